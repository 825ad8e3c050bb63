"""/metrics: the latest SLO evaluation in the Prometheus text format.

Names follow the Prometheus conventions for an exporter: an `opsdash_slo_` prefix, base units
and a `_ratio` suffix for 0-1 ratios, no colons. Sloth and Pyrra publish similar figures as
*recording rules* (`slo:sli_error:ratio_rate5m`, `slo:objective:ratio`,
`slo:period_error_budget_remaining:ratio` with `sloth_slo`/`sloth_service` labels); colon names
are reserved for rules a Prometheus evaluates, so an exporter must not use them. Anyone who
wants Sloth's names can write one recording rule per metric from ours. We publish the SLI
(good ratio, like Pyrra's availability) rather than Sloth's error ratio, with plain labels:
slo, sli, scope, team, agent.

Every figure comes from SloStatus (one query); a figure with no data is left out, not NaN, so
`absent()` and staleness work as usual. Window event counts are gauges (they fall as old events
leave the window), hence `opsdash_slo_window_events`, not a `_total` counter.

Access: with METRICS_TOKEN set, a scraper sends `Authorization: Bearer <token>` (Prometheus
`authorization: {credentials_file: …}`); without it /metrics is open only with DEBUG on. A
signed-in person with a role may always read it.
"""

import hmac
from collections.abc import Iterator
from decimal import Decimal

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from apps.accounts.roles import VIEWER, has_role
from apps.slo.alerts import rules_evaluate
from apps.slo.evaluate import slo_period
from apps.slo.models import SloScope, SloStatus, WindowKind
from apps.slo.windows import BURN_WINDOWS

LABELS = ["slo", "sli", "scope", "team", "agent"]


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


class SloCollector(Collector):
    """Reads every SloStatus at scrape time; nothing is kept in the process."""

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "opsdash_slo_info", "An SLO and its window (always 1).", labels=[*LABELS, "window"]
        )
        sli = GaugeMetricFamily(
            "opsdash_slo_sli_ratio",
            "Good events / total events over the SLO window.",
            labels=LABELS,
        )
        objective = GaugeMetricFamily(
            "opsdash_slo_objective_ratio", "The SLO's objective.", labels=LABELS
        )
        budget = GaugeMetricFamily(
            "opsdash_slo_error_budget_remaining_ratio",
            "Share of the window's error budget left (negative when overspent).",
            labels=LABELS,
        )
        burn = GaugeMetricFamily(
            "opsdash_slo_burn_rate",
            "Error ratio / (1 - objective) over a burn-rate window.",
            labels=[*LABELS, "window"],
        )
        threshold = GaugeMetricFamily(
            "opsdash_slo_burn_rate_threshold",
            "Burn rate above which an alert rule fires (both windows).",
            labels=[*LABELS, "severity", "long_window", "short_window"],
        )
        firing = GaugeMetricFamily(
            "opsdash_slo_alert_firing",
            "1 while a multi-window burn-rate alert rule fires.",
            labels=[*LABELS, "severity", "long_window", "short_window"],
        )
        events = GaugeMetricFamily(
            "opsdash_slo_window_events",
            "Events in the SLO window, by kind (good, total).",
            labels=[*LABELS, "kind"],
        )
        evaluated = GaugeMetricFamily(
            "opsdash_slo_evaluated_timestamp_seconds",
            "When the SLO was last evaluated (Unix time).",
            labels=LABELS,
        )
        statuses = SloStatus.objects.select_related(
            "slo", "slo__team", "slo__agent", "slo__agent__team"
        ).order_by("slo__slug")
        for status in statuses:
            slo = status.slo
            team = slo.agent.team if slo.scope == SloScope.AGENT and slo.agent else slo.team
            labels = [
                slo.slug,
                slo.sli,
                slo.scope,
                team.slug if team else "",
                slo.agent.slug if slo.agent else "",
            ]
            window = (
                "calendar_month"
                if slo.window_kind == WindowKind.CALENDAR_MONTH
                else f"{slo.window_days}d"
            )
            info.add_metric([*labels, window], 1)
            objective.add_metric(labels, float(slo.objective))
            if status.sli is not None:
                sli.add_metric(labels, float(status.sli))
            if status.budget_remaining is not None:
                budget.add_metric(labels, float(status.budget_remaining))
            rates = {name: _decimal(status.burn_rates.get(name)) for name in BURN_WINDOWS}
            for name, rate in rates.items():
                if rate is not None:
                    burn.add_metric([*labels, name], float(rate))
            # Recomputed from the stored burn rates with the same rule code the evaluation
            # used, so this stays one query and cannot disagree with the SloAlert rows.
            for state in rules_evaluate(rates, slo_period(slo, status.evaluated_at)):
                rule_labels = [*labels, state.rule.severity, state.rule.long_window]
                rule_labels.append(state.rule.short_window)
                threshold.add_metric(rule_labels, float(state.factor))
                firing.add_metric(rule_labels, 1 if state.firing else 0)
            events.add_metric([*labels, "good"], status.good)
            events.add_metric([*labels, "total"], status.total)
            evaluated.add_metric(labels, status.evaluated_at.timestamp())
        yield from (info, sli, objective, budget, burn, threshold, firing, events, evaluated)


# Only our collector: per-process figures (GC, memory) would differ per web worker and mislead.
REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(SloCollector())


def _bearer_ok(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    allowed = (
        (bool(token) and _bearer_ok(request, token))
        or (not token and settings.DEBUG)
        or has_role(request.user, VIEWER)
    )
    if not allowed:
        if token:
            response = HttpResponse(
                "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.\n",
                status=401,
                content_type="text/plain; charset=utf-8",
            )
            response["WWW-Authenticate"] = 'Bearer realm="opsdash metrics"'
            return response
        return HttpResponse(
            "/metrics is closed: set METRICS_TOKEN (or METRICS_TOKEN_FILE) and give Prometheus "
            "that bearer token, or sign in with a role to read it.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    # The classic text format (0.0.4): every Prometheus, Agent and VictoriaMetrics reads it, and
    # our names need none of the newer format's UTF-8 escaping.
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_PLAIN_0_0_4)
