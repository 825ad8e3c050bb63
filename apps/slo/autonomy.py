"""Autonomy driven by SLOs: automatic demotion on a safety page, promotion suggestions.

Demotion is automatic (opt-in per SLO with `auto_demote`) because an agent paging on rollback
or accuracy is doing harm now. Promotion is only ever suggested to the SRE leads: granting
more autonomy stays a person's decision.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse

from apps.accounts.roles import SRE_LEAD
from apps.fleet.models import Agent, AutonomyMode
from apps.notifications.services import Channel, notify
from apps.slo.models import SAFETY_KINDS, AlertSeverity, SliKind, Slo, SloAlert, SloScope

# One step down at a time; observe is the floor.
DEMOTION = {
    AutonomyMode.AUTO_LOW_RISK: AutonomyMode.SUGGEST,
    AutonomyMode.SUGGEST: AutonomyMode.OBSERVE,
}
PROMOTION = {
    AutonomyMode.OBSERVE: AutonomyMode.SUGGEST,
    AutonomyMode.SUGGEST: AutonomyMode.AUTO_LOW_RISK,
}
# A promotion needs evidence the agent is right (precision) and misses little (recall).
REQUIRED_KINDS = frozenset({SliKind.ACCURACY, SliKind.RECALL})


def agent_path(agent: Agent) -> str:
    return reverse("fleet:agent", kwargs={"slug": agent.slug})


def demotion_applies(alert: SloAlert) -> bool:
    slo = alert.slo
    return (
        alert.severity == AlertSeverity.PAGE
        and slo.sli in SAFETY_KINDS
        and slo.scope == SloScope.AGENT
        and slo.agent_id is not None
        and slo.auto_demote
    )


@transaction.atomic
def agent_demote_for_alert(*, alert: SloAlert, now: datetime) -> str | None:
    """Drops the SLO's agent one autonomy step for a page alert that just opened; returns the
    new mode, or None when nothing changed (not eligible, or already observing).

    Called only by the evaluation that inserted the alert, in its transaction, so a repeated
    or concurrent evaluation cannot demote twice for one alert.
    """
    from apps.slo.alerts import slo_channels, times

    if not demotion_applies(alert):
        return None
    slo = alert.slo
    assert slo.agent_id is not None  # demotion_applies checked it
    # Locked so a person changing the mode at the same moment is not overwritten blindly.
    agent = Agent.objects.select_for_update().get(pk=slo.agent_id)
    old = agent.autonomy_mode
    new = DEMOTION.get(AutonomyMode(old))
    if new is None:
        return None
    Agent.objects.filter(pk=agent.pk).update(autonomy_mode=new)
    agent.autonomy_mode = new
    reason = (
        f"{slo.name} ({slo.sli}) paged: burn rate {times(alert.last_burn_rate)} over "
        f"{alert.long_window} and {alert.short_window} above {times(alert.factor)}"
    )
    from apps.audit.services.opsdash_events import opsdash_event_record

    opsdash_event_record(
        agent=agent,
        event_type="autonomy_change",
        data={
            "from": old,
            "to": str(new),
            "reason": reason,
            "slo": slo.slug,
            "alert": alert.pk,
            "by": "opsdash",
        },
    )

    notify(
        kind="autonomy_demoted",
        title=f"{agent.slug} demoted from {old} to {new}",
        body=f"{reason}. Promote it again on its page once the cause is fixed.",
        url=agent_path(agent),
        roles=[SRE_LEAD],
        users=list(slo.owners.all()),
        agent=agent,
        dedup_key=f"autonomy_demoted:{alert.pk}",
        # A change to the agent is always recorded in the inbox, whatever the SLO's choice.
        channels=slo_channels(slo, always_inbox=True),
        webhook_url=slo.webhook_url or None,
    )
    return str(new)


@dataclass(frozen=True)
class SloStanding:
    """How one SLO of an agent fared over a promotion period."""

    slug: str
    name: str
    sli: str
    objective: Decimal
    good: int
    total: int

    @property
    def ratio(self) -> Decimal | None:
        return Decimal(self.good) / Decimal(self.total) if self.total else None

    @property
    def met(self) -> bool:
        # No data is not evidence: an SLO without events blocks the promotion.
        return self.ratio is not None and self.ratio >= self.objective


@dataclass(frozen=True)
class PromotionCandidate:
    agent: Agent
    current_mode: str
    suggested_mode: str
    actions: int
    since: datetime
    until: datetime
    slos: tuple[SloStanding, ...]

    # The names the agent scorecard (apps.slo.selectors.promotion_suggestion) reads.
    @property
    def to_mode(self) -> str:
        return self.suggested_mode

    @property
    def reason(self) -> str:
        days = round((self.until - self.since) / timedelta(days=1))
        return f"{days} days, {self.actions} actions, every SLO met"


def promotion_settings(days: int | None, min_actions: int | None) -> tuple[int, int]:
    return (
        days if days is not None else settings.SLO_PROMOTION_DAYS,
        min_actions if min_actions is not None else settings.SLO_PROMOTION_MIN_ACTIONS,
    )


def _candidates(
    agents: list[Agent], *, now: datetime, days: int, min_actions: int
) -> list[PromotionCandidate]:
    from apps.actions.models import Action

    since = now - timedelta(days=days)
    promotable = [a for a in agents if not a.halted and a.autonomy_mode in PROMOTION]
    if not promotable:
        return []
    ids = [a.pk for a in promotable]
    slos = list(
        Slo.objects.filter(scope=SloScope.AGENT, agent_id__in=ids).order_by("agent_id", "slug")
    )
    within = Q(rollups__minute__gte=since, rollups__minute__lt=now)
    sums = {
        row["pk"]: (int(row["g"]), int(row["t"]))
        for row in Slo.objects.filter(pk__in=[s.pk for s in slos])
        .values("pk")
        .annotate(
            g=Coalesce(Sum("rollups__good", filter=within), 0),
            t=Coalesce(Sum("rollups__total", filter=within), 0),
        )
    }
    actions = dict(
        Action.objects.filter(agent_id__in=ids, proposed_at__gte=since, proposed_at__lt=now)
        .values("agent_id")
        .annotate(n=Count("pk"))
        .values_list("agent_id", "n")
    )
    by_agent: dict[int, list[Slo]] = defaultdict(list)
    for slo in slos:
        by_agent[slo.agent_id].append(slo)  # type: ignore[index]
    out = []
    for agent in promotable:
        own = by_agent.get(agent.pk, [])
        standings = tuple(
            SloStanding(
                slug=s.slug,
                name=s.name,
                sli=s.sli,
                objective=Decimal(s.objective),
                good=sums.get(s.pk, (0, 0))[0],
                total=sums.get(s.pk, (0, 0))[1],
            )
            for s in own
        )
        if not {s.sli for s in standings} >= REQUIRED_KINDS:
            continue
        if not all(s.met for s in standings) or actions.get(agent.pk, 0) < min_actions:
            continue
        out.append(
            PromotionCandidate(
                agent=agent,
                current_mode=agent.autonomy_mode,
                suggested_mode=str(PROMOTION[AutonomyMode(agent.autonomy_mode)]),
                actions=actions.get(agent.pk, 0),
                since=since,
                until=now,
                slos=standings,
            )
        )
    return out


def promotion_candidates(
    now: datetime, *, days: int | None = None, min_actions: int | None = None
) -> list[PromotionCandidate]:
    """Agents that met every one of their agent-scoped SLOs (accuracy and recall among them)
    over the last `days` days with at least `min_actions` proposed actions."""
    days, min_actions = promotion_settings(days, min_actions)
    agents = list(Agent.objects.select_related("team").order_by("slug"))
    return _candidates(agents, now=now, days=days, min_actions=min_actions)


def agent_promotion_suggestion(
    agent: Agent, *, now: datetime, days: int | None = None, min_actions: int | None = None
) -> PromotionCandidate | None:
    """For the agent scorecard: the suggestion for one agent, or None."""
    days, min_actions = promotion_settings(days, min_actions)
    found = _candidates([agent], now=now, days=days, min_actions=min_actions)
    return found[0] if found else None


def promotion_suggestions_notify(*, now: datetime) -> int:
    """Tells the SRE leads about each candidate, once per agent per period (the dedup key); returns
    how many agents qualify now."""
    days, min_actions = promotion_settings(None, None)
    # Periods are fixed slices of `days` days since the epoch, so the key repeats (and the
    # notice is not sent again) until the next period begins.
    period = int(now.timestamp() // timedelta(days=days).total_seconds())
    sent = 0
    for candidate in promotion_candidates(now, days=days, min_actions=min_actions):
        agent = candidate.agent
        kinds = ", ".join(sorted({s.sli for s in candidate.slos}))
        notify(
            kind="autonomy_promotion_suggested",
            title=f"{agent.slug} met its SLOs for {days} days: consider {candidate.suggested_mode}",
            body=(
                f"{candidate.actions} actions since {candidate.since:%Y-%m-%d}; every SLO met "
                f"({kinds}). It runs in {candidate.current_mode} now."
            ),
            url=agent_path(agent),
            roles=[SRE_LEAD],
            dedup_key=f"autonomy_promotion:{agent.slug}:{days}d:{period}",
            channels={Channel.INBOX, Channel.EMAIL},
        )
        sent += 1
    return sent
