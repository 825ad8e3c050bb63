"""Multi-window multi-burn-rate alerts (Google SRE Workbook, ch. 5) and their lifecycle.

A rule fires while both its long and its short window burn faster than its factor. One SloAlert
row is one firing: opened when the rule starts firing, its last/peak burn rate (of the long
window) updated while it fires, resolved when it stops. The partial unique constraint
"sloalert_one_open" (one open alert per SLO and long window) is what de-duplicates: a repeated
or concurrent evaluation finds the open row, or loses the insert race, and never opens another.
Only the evaluation that inserted the row (or claimed its resolution) notifies, and the
notification's dedup key makes even that idempotent.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.db.models import DecimalField, F, Value
from django.db.models.functions import Greatest
from django.urls import NoReverseMatch, reverse

from apps.accounts.roles import SRE_LEAD
from apps.notifications.services import Channel, notify
from apps.slo.models import AlertSeverity, Slo, SloAlert, SloScope
from apps.slo.windows import ALERT_RULES, AlertRule, burn_factor

FACTOR_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class RuleState:
    """One alert rule at one evaluation."""

    rule: AlertRule
    factor: Decimal
    long_burn: Decimal | None
    short_burn: Decimal | None

    @property
    def firing(self) -> bool:
        return (
            self.long_burn is not None
            and self.short_burn is not None
            and self.long_burn > self.factor
            and self.short_burn > self.factor
        )


def rule_factor(period: timedelta, rule: AlertRule) -> Decimal:
    """The rule's factor at the stored precision (SloAlert.factor: 4 places)."""
    return burn_factor(period, rule).quantize(FACTOR_PLACES, rounding=ROUND_HALF_UP)


def rules_evaluate(burns: Mapping[str, Decimal | None], period: timedelta) -> list[RuleState]:
    return [
        RuleState(
            rule=rule,
            factor=rule_factor(period, rule),
            long_burn=burns.get(rule.long_window),
            short_burn=burns.get(rule.short_window),
        )
        for rule in ALERT_RULES
    ]


@dataclass
class AlertChanges:
    opened: list[SloAlert]
    resolved: list[SloAlert]
    # Page alerts that were already open before this evaluation and still fire.
    paging_before: bool


def _burn_value(burn: Decimal) -> Value:
    return Value(burn, output_field=DecimalField(max_digits=12, decimal_places=4))


def _record_reading(slo: Slo, rule: AlertRule, burn: Decimal) -> int:
    open_alert = SloAlert.objects.filter(
        slo=slo, long_window=rule.long_window, resolved_at__isnull=True
    )
    return open_alert.update(
        last_burn_rate=burn, peak_burn_rate=Greatest(F("peak_burn_rate"), _burn_value(burn))
    )


def _claim_resolution(alert: SloAlert, now: datetime) -> bool:
    # Of two concurrent evaluations only one changes the row, and only that one notifies.
    return bool(
        SloAlert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(resolved_at=now)
    )


@transaction.atomic(savepoint=False)
def slo_alerts_sync(*, slo: Slo, rules: Sequence[RuleState], now: datetime) -> AlertChanges:
    """Opens, updates and resolves the SLO's alerts to match `rules`; notifies and demotes
    for what this call changed."""
    changes = AlertChanges(opened=[], resolved=[], paging_before=False)
    # One read for all four rules; the writes below re-check "still open" themselves.
    open_alerts = {
        a.long_window: a for a in SloAlert.objects.filter(slo=slo, resolved_at__isnull=True)
    }
    for state in rules:
        rule = state.rule
        existing = open_alerts.get(rule.long_window)
        if state.firing:
            assert state.long_burn is not None
            if existing is not None and _record_reading(slo, rule, state.long_burn):
                if rule.severity == AlertSeverity.PAGE:
                    changes.paging_before = True
                continue
            try:
                # A savepoint: losing the insert race must not abort the whole evaluation.
                with transaction.atomic():
                    alert = SloAlert.objects.create(
                        slo=slo,
                        severity=rule.severity,
                        long_window=rule.long_window,
                        short_window=rule.short_window,
                        factor=state.factor,
                        started_at=now,
                        peak_burn_rate=state.long_burn,
                        last_burn_rate=state.long_burn,
                    )
            except IntegrityError:
                # A concurrent evaluation opened it (and notifies); ours is one more reading.
                _record_reading(slo, rule, state.long_burn)
                if rule.severity == AlertSeverity.PAGE:
                    changes.paging_before = True
                continue
            changes.opened.append(alert)
        elif existing is not None and _claim_resolution(existing, now):
            existing.slo = slo
            existing.resolved_at = now
            changes.resolved.append(existing)
    by_rule = {s.rule.long_window: s for s in rules}
    if slo.alerting:
        for alert in changes.opened:
            alert_notify_firing(alert, by_rule[alert.long_window])
        for alert in changes.resolved:
            alert_notify_resolved(alert)
    opened_pages = [a for a in changes.opened if a.severity == AlertSeverity.PAGE]
    if opened_pages and not changes.paging_before:
        from apps.slo.autonomy import agent_demote_for_alert

        # One demotion per paging episode: two page rules starting together are one incident.
        agent_demote_for_alert(alert=opened_pages[0], now=now)
    return changes


def slo_url(slo: Slo) -> str:
    """The SLO page, once the pages are routed; no link rather than a broken one."""
    try:
        return reverse("slo:detail", kwargs={"slug": slo.slug})
    except NoReverseMatch:
        return ""


def slo_channels(slo: Slo, *, always_inbox: bool = False) -> set[str]:
    channels: set[str] = set()
    if slo.notify_in_app or always_inbox:
        channels.add(Channel.INBOX)
    if slo.notify_email:
        channels.add(Channel.EMAIL)
    if slo.notify_webhook:
        channels.add(Channel.WEBHOOK)
    return channels


def slo_notify(slo: Slo, *, kind: str, title: str, body: str, dedup_key: str) -> None:
    """To the SLO's owners, the SRE leads, and the agent's owners for an agent SLO."""
    channels = slo_channels(slo)
    if not channels:
        return
    notify(
        kind=kind,
        title=title,
        body=body,
        url=slo_url(slo),
        roles=[SRE_LEAD],
        users=list(slo.owners.all()),
        agent=slo.agent if slo.scope == SloScope.AGENT else None,
        dedup_key=dedup_key,
        channels=channels,
        webhook_url=slo.webhook_url or None,
    )


def times(value: Decimal | None) -> str:
    """A burn rate or factor as people read it: 20x, 14.4x, 0.9333x."""
    if value is None:
        return "no data"
    return f"{value.normalize():f}x"


def _windows(alert: SloAlert) -> str:
    return f"{alert.long_window}/{alert.short_window}"


def alert_notify_firing(alert: SloAlert, state: RuleState) -> None:
    slo = alert.slo
    severity = "Page" if alert.severity == AlertSeverity.PAGE else "Ticket"
    share = (state.rule.budget_share * 100).normalize()
    slo_notify(
        slo,
        kind="slo_alert",
        title=(
            f"{severity}: {slo.name} burns its error budget at {times(state.long_burn)} "
            f"({_windows(alert)})"
        ),
        body=(
            f"Burn rate {times(state.long_burn)} over {alert.long_window} and {times(state.short_burn)} over "
            f"{alert.short_window}, both above {times(alert.factor)} ({share:f} % of the period's "
            f"budget in {alert.long_window}). Objective {Decimal(slo.objective).normalize():f}."
        ),
        dedup_key=f"slo_alert:{alert.pk}:firing",
    )


def alert_notify_resolved(alert: SloAlert) -> None:
    slo = alert.slo
    assert alert.resolved_at is not None
    minutes = int((alert.resolved_at - alert.started_at).total_seconds() // 60)
    slo_notify(
        slo,
        kind="slo_alert_resolved",
        title=f"Resolved: {slo.name} ({_windows(alert)})",
        body=(
            f"Burn rate back under {times(alert.factor)} after {minutes} min; "
            f"peak {times(alert.peak_burn_rate)}."
        ),
        dedup_key=f"slo_alert:{alert.pk}:resolved",
    )
