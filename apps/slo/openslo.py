"""OpenSLO v1 export and import of SLO definitions (https://github.com/OpenSLO/OpenSLO).

One SLO becomes one `kind: SLO` document with an inline indicator:

    apiVersion: openslo/v1
    kind: SLO
    metadata:
      name: triage-time-to-propose            # the slug
      displayName: Triage proposes quickly
      annotations: {opsdash.dev/alerting: "true", ...}   # what OpenSLO has no field for
    spec:
      description: ...
      service: platform                        # the team's slug, else "opsdash"
      indicator:
        metadata: {name: triage-time-to-propose-sli, displayName: Time to propose}
        spec:
          ratioMetric:
            counter: true
            good:  {metricSource: {type: opsdash, spec: {sli: time_to_propose, scope: agent, ...}}}
            total: {metricSource: {type: opsdash, spec: {...the same...}}}
      timeWindow: [{duration: 28d, isRolling: true}]
      budgetingMethod: Occurrences
      objectives: [{displayName: ..., target: 0.99}]

A PromQL SLO uses `type: prometheus` with `spec.query` for good and total. A calendar-month
window is `{duration: 1M, isRolling: false, calendar: {startTime: ..., timeZone: ...}}`.

Import reads many documents (`---`), refuses what opsdash cannot honour (Timeslices, several
objectives, thresholdMetric, other metric sources, references to separate SLI or AlertPolicy
objects) naming the field, and skips kinds that carry nothing opsdash uses, saying so. Nothing is
written unless every SLO document is valid.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.policy.schema import PolicyInvalid as _HostileYaml
from apps.policy.schema import _guard_structure, _Loader, _yaml_error
from apps.slo.models import THRESHOLD_KINDS, SliKind, Slo, SloScope, WindowKind
from apps.slo.services import (
    DEFAULTS,
    SLUG_RE,
    duration_format,
    duration_parse,
    slo_check,
    slo_create,
    slo_update,
)

API_VERSION = "openslo/v1"
ANNOTATION_PREFIX = "opsdash.dev/"
MAX_BYTES = 512 * 1024
MAX_DOCUMENTS = 500
DEFAULT_SERVICE = "opsdash"
# Calendar windows start on the first of a month at midnight in their zone; OpenSLO wants a
# concrete start, so the export names one such instant and the import accepts any.
CALENDAR_START = "2020-01-01 00:00:00"
ROLLING_DURATIONS = {"7d": 7, "1w": 7, "28d": 28, "4w": 28, "30d": 30}
# Kinds that hold nothing an opsdash SLO reads: skipped with a note, never an error.
SKIPPED_KINDS = {
    "Service": "opsdash takes the service from the SLO's team",
    "SLI": "opsdash reads indicators inline in the SLO (spec.indicator)",
    "DataSource": "opsdash reads its own data and PROMETHEUS_URL",
    "AlertPolicy": "opsdash alerts by multi-window burn rates, set per SLO in annotations",
    "AlertCondition": "opsdash alerts by multi-window burn rates, set per SLO in annotations",
    "AlertNotificationTarget": "opsdash notifies as set per SLO in annotations",
}
BOOL_ANNOTATIONS = {
    "alerting": "alerting",
    "notify-in-app": "notify_in_app",
    "notify-email": "notify_email",
    "notify-webhook": "notify_webhook",
    "auto-demote": "auto_demote",
}
TEXT_ANNOTATIONS = {"webhook-url": "webhook_url", "owners": "owners"}
OPSDASH_SPEC_KEYS = (
    "sli",
    "scope",
    "team",
    "agent",
    "agent_version",
    "threshold",
    "rollback_window",
)


# ---------------------------------------------------------------------------------------------
# Export


def slo_openslo(slo: Slo) -> dict[str, Any]:
    """One SLO as an OpenSLO v1 document (a plain dict, ready for YAML)."""
    annotations: dict[str, str] = {}
    for key, name in BOOL_ANNOTATIONS.items():
        annotations[ANNOTATION_PREFIX + key] = "true" if getattr(slo, name) else "false"
    if slo.webhook_url:
        annotations[ANNOTATION_PREFIX + "webhook-url"] = slo.webhook_url
    # .all() so a prefetch serves it: an export of every SLO costs a fixed number of queries.
    owners = sorted(owner.get_username() for owner in slo.owners.all())
    if owners:
        annotations[ANNOTATION_PREFIX + "owners"] = ",".join(owners)

    if slo.sli == SliKind.PROMQL:
        good = {"type": "prometheus", "spec": {"query": slo.good_query}}
        total = {"type": "prometheus", "spec": {"query": slo.total_query}}
    else:
        source: dict[str, Any] = {"sli": slo.sli, "scope": slo.scope}
        if slo.team is not None:
            source["team"] = slo.team.slug
        if slo.agent is not None:
            source["agent"] = slo.agent.slug
        if slo.agent_version:
            source["agent_version"] = slo.agent_version
        if slo.sli in THRESHOLD_KINDS and slo.threshold is not None:
            source["threshold"] = _number(slo.threshold)
        if slo.sli == SliKind.ROLLBACK:
            source["rollback_window"] = duration_format(slo.rollback_window)
        good = {"type": "opsdash", "spec": dict(source)}
        total = {"type": "opsdash", "spec": dict(source)}

    if slo.window_kind == WindowKind.CALENDAR_MONTH:
        window: dict[str, Any] = {
            "duration": "1M",
            "isRolling": False,
            "calendar": {"startTime": CALENDAR_START, "timeZone": slo.time_zone},
        }
    else:
        window = {"duration": f"{slo.window_days}d", "isRolling": True}

    spec: dict[str, Any] = {}
    if slo.description:
        spec["description"] = slo.description
    spec["service"] = _service(slo)
    spec["indicator"] = {
        "metadata": {"name": f"{slo.slug}-sli"[:63], "displayName": slo.get_sli_display()},
        "spec": {
            "ratioMetric": {
                "counter": True,
                "good": {"metricSource": good},
                "total": {"metricSource": total},
            }
        },
    }
    spec["timeWindow"] = [window]
    spec["budgetingMethod"] = "Occurrences"
    spec["objectives"] = [{"displayName": slo.name, "target": _number(slo.objective)}]
    return {
        "apiVersion": API_VERSION,
        "kind": "SLO",
        "metadata": {"name": slo.slug, "displayName": slo.name, "annotations": annotations},
        "spec": spec,
    }


def openslo_export(slos: Any) -> str:
    """SLOs as a multi-document OpenSLO v1 YAML stream, in slug order."""
    documents = [slo_openslo(slo) for slo in sorted(slos, key=lambda s: s.slug)]
    if not documents:
        return ""
    return yaml.safe_dump_all(
        documents, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


def openslo_export_all() -> str:
    return openslo_export(
        Slo.objects.select_related("team", "agent", "agent__team").prefetch_related("owners")
    )


def _service(slo: Slo) -> str:
    if slo.team is not None:
        return slo.team.slug
    if slo.agent is not None:
        return slo.agent.team.slug
    return DEFAULT_SERVICE


def _number(value: Decimal) -> int | float:
    """A Decimal as a YAML number: an int when whole, else the float with the same digits."""
    normal = value.normalize()
    if normal == normal.to_integral_value():
        return int(normal)
    return float(format(normal, "f"))


# ---------------------------------------------------------------------------------------------
# Import


@dataclass(frozen=True)
class OpensloError:
    document: int  # 1-based position in the stream
    path: str
    message: str

    def __str__(self) -> str:
        where = f"document {self.document}" + (f", {self.path}" if self.path else "")
        return f"{where}: {self.message}"


class OpensloInvalid(ValueError):
    def __init__(self, errors: list[OpensloError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


@dataclass
class OpensloImport:
    """What an import did (or, in a dry run, would do)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one sentence per skipped document
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "dry_run": self.dry_run,
        }


def openslo_import(text: Any, *, by: Any, dry_run: bool = False) -> OpensloImport:
    """Creates or updates SLOs by metadata.name; all or nothing. Raises OpensloInvalid."""
    documents = openslo_load(text)
    result = OpensloImport(dry_run=dry_run)
    errors: list[OpensloError] = []
    planned: list[tuple[int, str, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        try:
            kind = _kind(index, document)
            if kind != "SLO":
                result.skipped.append(f"document {index} (kind {kind}): {SKIPPED_KINDS[kind]}")
                continue
            slug, fields = _slo_fields(index, document)
        except OpensloInvalid as exc:
            errors.extend(exc.errors)
            continue
        if slug in seen:
            errors.append(
                OpensloError(
                    index, "metadata.name", f"“{slug}” is also document {seen[slug]}'s name"
                )
            )
            continue
        seen[slug] = index
        planned.append((index, slug, fields))
    if errors:
        raise OpensloInvalid(errors)

    # Rules (known agents, owners, thresholds…) are the services' to check. A dry run asks
    # them without writing (and without rebuilding rollups); an import is one transaction.
    with transaction.atomic():
        for index, slug, fields in planned:
            try:
                _apply(slug, fields, by=by, result=result)
            except ValidationError as exc:
                errors.extend(_service_errors(index, exc))
        if errors:
            raise OpensloInvalid(errors)
    return result


def openslo_load(text: Any) -> list[Any]:
    """The YAML documents of `text`, refusing oversized and hostile input."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise OpensloInvalid([OpensloError(1, "", "the file is not UTF-8 text")]) from exc
    if not isinstance(text, str):
        raise OpensloInvalid([OpensloError(1, "", "send OpenSLO as YAML text")])
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise OpensloInvalid(
            [
                OpensloError(
                    1, "", f"the file is {size // 1024} KB; the limit is {MAX_BYTES // 1024} KB"
                )
            ]
        )
    try:
        _guard_structure(text)
        documents = list(yaml.load_all(text, Loader=_Loader))
    except _HostileYaml as exc:
        raise OpensloInvalid(
            [OpensloError(1, f"line {e.line}" if e.line else "", e.message) for e in exc.errors]
        ) from exc
    except yaml.YAMLError as exc:
        problem = _yaml_error(exc, text)
        where = f"line {problem.line}" if problem.line else ""
        raise OpensloInvalid([OpensloError(1, where, problem.message)]) from exc
    except (ValueError, TypeError, OverflowError) as exc:
        # Values PyYAML cannot construct (e.g. a timestamp like 2020-13-45).
        raise OpensloInvalid([OpensloError(1, "", f"not valid YAML: {exc}")]) from exc
    if len(documents) > MAX_DOCUMENTS:
        raise OpensloInvalid(
            [OpensloError(1, "", f"{len(documents)} documents; at most {MAX_DOCUMENTS}")]
        )
    if not any(d is not None for d in documents):
        raise OpensloInvalid([OpensloError(1, "", "the file holds no OpenSLO document")])
    return documents


def _kind(index: int, document: Any) -> str:
    if not isinstance(document, dict):
        raise OpensloInvalid(
            [OpensloError(index, "", "each document must be a mapping (apiVersion, kind, …)")]
        )
    api_version = document.get("apiVersion")
    if api_version != API_VERSION:
        raise OpensloInvalid(
            [
                OpensloError(
                    index,
                    "apiVersion",
                    f"“{str(api_version)[:40]}” is not supported; opsdash reads {API_VERSION}",
                )
            ]
        )
    kind = document.get("kind")
    if kind == "SLO" or kind in SKIPPED_KINDS:
        return str(kind)
    raise OpensloInvalid(
        [
            OpensloError(
                index,
                "kind",
                f"unknown kind “{str(kind)[:40]}”; OpenSLO v1 kinds are SLO, "
                + ", ".join(SKIPPED_KINDS),
            )
        ]
    )


class _Reader:
    """Walks one document, collecting errors that name the field's path."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.errors: list[OpensloError] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(OpensloError(self.index, path, message))

    def mapping(
        self, value: Any, path: str, *, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(path, "must be a mapping")
            return None
        for key in value:
            if key not in allowed:
                self.fail(
                    f"{path}.{key}",
                    f"not supported by opsdash (supported here: {', '.join(allowed)})",
                )
        for key in required:
            if key not in value:
                self.fail(f"{path}.{key}", "is required")
        return value

    def text(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(path, "must be text")
            return None
        return value


def _slo_fields(index: int, document: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    r = _Reader(index)
    r.mapping(
        document,
        "",
        allowed=("apiVersion", "kind", "metadata", "spec"),
        required=(
            "metadata",
            "spec",
        ),
    )
    fields: dict[str, Any] = {}
    metadata = (
        r.mapping(
            document.get("metadata", {}),
            "metadata",
            allowed=("name", "displayName", "annotations", "labels"),
            required=("name",),
        )
        or {}
    )
    slug = r.text(metadata.get("name"), "metadata.name") or ""
    if slug and not SLUG_RE.match(slug):
        r.fail(
            "metadata.name",
            "use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a "
            "letter or digit",
        )
    name = r.text(metadata.get("displayName"), "metadata.displayName")
    if metadata.get("labels"):
        r.fail("metadata.labels", "labels are not supported by opsdash; remove them")
    _annotations(r, metadata.get("annotations"), fields)

    spec = (
        r.mapping(
            document.get("spec", {}),
            "spec",
            allowed=(
                "description",
                "service",
                "indicator",
                "indicatorRef",
                "timeWindow",
                "budgetingMethod",
                "objectives",
                "alertPolicies",
            ),
            required=("timeWindow", "budgetingMethod", "objectives"),
        )
        or {}
    )
    description = r.text(spec.get("description"), "spec.description")
    if description is not None:
        fields["description"] = description
    r.text(spec.get("service"), "spec.service")  # informational: the team decides
    if "indicatorRef" in spec:
        r.fail(
            "spec.indicatorRef",
            "references to a separate SLI are not supported; put the indicator inline "
            "(spec.indicator)",
        )
    elif "indicator" not in spec:
        r.fail("spec.indicator", "is required (an inline ratioMetric indicator)")
    else:
        _indicator(r, spec["indicator"], fields)
    if spec.get("alertPolicies"):
        r.fail(
            "spec.alertPolicies",
            "alert policies are not supported; opsdash alerts by multi-window burn rates and "
            f"reads notifications from {ANNOTATION_PREFIX}* annotations",
        )
    if "timeWindow" in spec:
        _time_window(r, spec["timeWindow"], fields)
    method = spec.get("budgetingMethod")
    if "budgetingMethod" in spec and method != "Occurrences":
        r.fail(
            "spec.budgetingMethod",
            f"“{str(method)[:40]}” is not supported; opsdash budgets by Occurrences "
            "(good events over total events)",
        )
    objective_name = (
        _objectives(r, spec.get("objectives"), fields) if "objectives" in spec else None
    )
    fields["name"] = name or objective_name or slug
    if r.errors:
        raise OpensloInvalid(r.errors)
    return slug, fields


def _annotations(r: _Reader, value: Any, fields: dict[str, Any]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        r.fail("metadata.annotations", "must be a mapping of text to text")
        return
    for key, raw in value.items():
        path = f"metadata.annotations.{key}"
        if not isinstance(key, str) or not key.startswith(ANNOTATION_PREFIX):
            continue  # others' annotations are theirs; opsdash neither reads nor keeps them
        short = key[len(ANNOTATION_PREFIX) :]
        if short in BOOL_ANNOTATIONS:
            if raw in ("true", True):
                fields[BOOL_ANNOTATIONS[short]] = True
            elif raw in ("false", False):
                fields[BOOL_ANNOTATIONS[short]] = False
            else:
                r.fail(path, 'must be "true" or "false"')
        elif short in TEXT_ANNOTATIONS:
            if not isinstance(raw, str):
                r.fail(path, "must be text")
            elif short == "owners":
                fields["owners"] = [p.strip() for p in raw.split(",") if p.strip()]
            else:
                fields[TEXT_ANNOTATIONS[short]] = raw
        else:
            known = ", ".join(ANNOTATION_PREFIX + k for k in [*BOOL_ANNOTATIONS, *TEXT_ANNOTATIONS])
            r.fail(path, f"unknown opsdash annotation; known: {known}")


def _indicator(r: _Reader, value: Any, fields: dict[str, Any]) -> None:
    indicator = r.mapping(value, "spec.indicator", allowed=("metadata", "spec"), required=("spec",))
    if indicator is None or "spec" not in indicator:
        return
    spec = r.mapping(
        indicator["spec"],
        "spec.indicator.spec",
        allowed=("description", "ratioMetric", "thresholdMetric"),
    )
    if spec is None:
        return
    if "thresholdMetric" in spec:
        r.fail(
            "spec.indicator.spec.thresholdMetric",
            "thresholdMetric is not supported; opsdash SLIs are ratios (ratioMetric with good "
            "and total)",
        )
        return
    if "ratioMetric" not in spec:
        r.fail("spec.indicator.spec.ratioMetric", "is required")
        return
    path = "spec.indicator.spec.ratioMetric"
    ratio = r.mapping(
        spec["ratioMetric"],
        path,
        allowed=("counter", "good", "total", "bad", "rawType", "raw"),
        required=("good", "total"),
    )
    if ratio is None:
        return
    for unsupported in ("bad", "raw", "rawType"):
        if unsupported in ratio:
            r.fail(f"{path}.{unsupported}", "not supported; give good and total")
    if ratio.get("counter", True) is not True:
        r.fail(f"{path}.counter", "opsdash counts events: counter must be true")
    if "good" not in ratio or "total" not in ratio:
        return
    good = _metric_source(r, ratio["good"], f"{path}.good")
    total = _metric_source(r, ratio["total"], f"{path}.total")
    if good is None or total is None:
        return
    if good[0] != total[0]:
        r.fail(f"{path}.total.metricSource.type", "good and total must have the same type")
        return
    if good[0] == "prometheus":
        fields["sli"] = SliKind.PROMQL.value
        fields["good_query"] = good[1].get("query")
        fields["total_query"] = total[1].get("query")
        return
    if good[1] != total[1]:
        r.fail(
            f"{path}.total.metricSource.spec",
            "for type opsdash, good and total must name the same SLI (the same spec)",
        )
        return
    _opsdash_source(r, good[1], f"{path}.good.metricSource.spec", fields)


def _metric_source(r: _Reader, value: Any, path: str) -> tuple[str, dict[str, Any]] | None:
    holder = r.mapping(value, path, allowed=("metricSource",), required=("metricSource",))
    if holder is None or "metricSource" not in holder:
        return None
    path = f"{path}.metricSource"
    source = r.mapping(
        holder["metricSource"],
        path,
        allowed=("type", "spec", "metricSourceRef"),
        required=("type", "spec"),
    )
    if source is None:
        return None
    if "metricSourceRef" in source:
        r.fail(f"{path}.metricSourceRef", "DataSource references are not supported")
    kind = source.get("type")
    if kind not in ("opsdash", "prometheus"):
        r.fail(
            f"{path}.type",
            f"metric source type “{str(kind)[:40]}” is not supported; use opsdash (built-in "
            "SLIs) or prometheus (a PromQL query)",
        )
        return None
    spec = source.get("spec")
    if kind == "prometheus":
        spec = r.mapping(spec, f"{path}.spec", allowed=("query",), required=("query",))
        if spec is not None and "query" in spec and r.text(spec["query"], f"{path}.spec.query"):
            return str(kind), spec
        return None
    spec = r.mapping(spec, f"{path}.spec", allowed=OPSDASH_SPEC_KEYS, required=("sli",))
    return (str(kind), spec) if spec is not None else None


def _opsdash_source(r: _Reader, spec: dict[str, Any], path: str, fields: dict[str, Any]) -> None:
    sli = spec.get("sli")
    if sli == SliKind.PROMQL:
        r.fail(f"{path}.sli", "a PromQL SLI uses metric source type prometheus")
        return
    fields["sli"] = sli
    fields["scope"] = spec.get("scope", SloScope.ALL.value)
    for key in ("team", "agent", "agent_version"):
        if key in spec:
            fields[key] = r.text(spec[key], f"{path}.{key}")
    if "threshold" in spec:
        threshold = spec["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, int | float | str):
            r.fail(f"{path}.threshold", "must be a number")
        else:
            fields["threshold"] = threshold
    if "rollback_window" in spec:
        text = r.text(spec["rollback_window"], f"{path}.rollback_window")
        if text is not None:
            try:
                fields["rollback_window"] = duration_parse(text)
            except ValueError as exc:
                r.fail(f"{path}.rollback_window", str(exc))


def _time_window(r: _Reader, value: Any, fields: dict[str, Any]) -> None:
    path = "spec.timeWindow"
    if not isinstance(value, list) or len(value) != 1:
        r.fail(path, "must be a list of exactly one window")
        return
    path += "[0]"
    window = r.mapping(
        value[0], path, allowed=("duration", "isRolling", "calendar"), required=("duration",)
    )
    if window is None:
        return
    duration = window.get("duration")
    rolling = window.get("isRolling", "calendar" not in window)
    if rolling is True:
        if "calendar" in window:
            r.fail(f"{path}.calendar", "a rolling window has no calendar")
        days = ROLLING_DURATIONS.get(duration) if isinstance(duration, str) else None
        if days is None:
            r.fail(
                f"{path}.duration",
                f"“{str(duration)[:20]}” is not supported; rolling windows are 7d, 28d or 30d",
            )
            return
        fields["window_kind"] = WindowKind.ROLLING.value
        fields["window_days"] = days
        return
    if rolling is not False:
        r.fail(f"{path}.isRolling", "must be true or false")
        return
    if duration != "1M":
        r.fail(
            f"{path}.duration",
            f"“{str(duration)[:20]}” is not supported; calendar windows are one month (1M)",
        )
    calendar = r.mapping(
        window.get("calendar"),
        f"{path}.calendar",
        allowed=("startTime", "timeZone"),
        required=("startTime", "timeZone"),
    )
    if calendar is None:
        return
    start = calendar.get("startTime")
    if isinstance(start, datetime):
        start = start.strftime("%Y-%m-%d %H:%M:%S")
    try:
        moment = datetime.strptime(str(start), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        r.fail(f"{path}.calendar.startTime", "must look like 2024-01-01 00:00:00")
    else:
        if (moment.day, moment.hour, moment.minute, moment.second) != (1, 0, 0, 0):
            r.fail(
                f"{path}.calendar.startTime",
                "opsdash months start on the 1st at 00:00:00 in the time zone",
            )
    zone = calendar.get("timeZone")
    fields["window_kind"] = WindowKind.CALENDAR_MONTH.value
    fields["time_zone"] = zone if isinstance(zone, str) else None


def _objectives(r: _Reader, value: Any, fields: dict[str, Any]) -> str | None:
    path = "spec.objectives"
    if not isinstance(value, list) or not value:
        r.fail(path, "must be a list with one objective")
        return None
    if len(value) > 1:
        r.fail(path, f"{len(value)} objectives; opsdash supports exactly one per SLO")
        return None
    path += "[0]"
    objective = r.mapping(
        value[0],
        path,
        allowed=(
            "displayName",
            "target",
            "targetPercent",
            "op",
            "value",
            "timeSliceTarget",
            "timeSliceWindow",
            "indicator",
            "indicatorRef",
            "compositeWeight",
        ),
    )
    if objective is None:
        return None
    for unsupported, why in (
        ("op", "thresholds belong in the opsdash metric source (threshold)"),
        ("value", "thresholds belong in the opsdash metric source (threshold)"),
        ("timeSliceTarget", "opsdash budgets by Occurrences, not time slices"),
        ("timeSliceWindow", "opsdash budgets by Occurrences, not time slices"),
        ("indicator", "give the indicator once, in spec.indicator"),
        ("indicatorRef", "give the indicator once, in spec.indicator"),
        ("compositeWeight", "composite SLOs are not supported"),
    ):
        if unsupported in objective:
            r.fail(f"{path}.{unsupported}", f"not supported: {why}")
    if "target" in objective and "targetPercent" in objective:
        r.fail(f"{path}.targetPercent", "give target or targetPercent, not both")
    elif "target" in objective:
        target = objective["target"]
        if isinstance(target, bool) or not isinstance(target, int | float):
            r.fail(f"{path}.target", "must be a number between 0.5 and 0.99999")
        else:
            fields["objective"] = target
    elif "targetPercent" in objective:
        percent = objective["targetPercent"]
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            r.fail(f"{path}.targetPercent", "must be a number between 50 and 99.999")
        else:
            fields["objective"] = Decimal(str(percent)) / 100
    else:
        r.fail(f"{path}.target", "is required")
    return r.text(objective.get("displayName"), f"{path}.displayName")


_FIELD_PATHS = {
    "slug": "metadata.name",
    "name": "metadata.displayName",
    "description": "spec.description",
    "objective": "spec.objectives[0].target",
    "window_kind": "spec.timeWindow[0]",
    "window_days": "spec.timeWindow[0].duration",
    "time_zone": "spec.timeWindow[0].calendar.timeZone",
    "good_query": "spec.indicator.spec.ratioMetric.good.metricSource.spec.query",
    "total_query": "spec.indicator.spec.ratioMetric.total.metricSource.spec.query",
    "alerting": f"metadata.annotations.{ANNOTATION_PREFIX}alerting",
    "notify_in_app": f"metadata.annotations.{ANNOTATION_PREFIX}notify-in-app",
    "notify_email": f"metadata.annotations.{ANNOTATION_PREFIX}notify-email",
    "notify_webhook": f"metadata.annotations.{ANNOTATION_PREFIX}notify-webhook",
    "webhook_url": f"metadata.annotations.{ANNOTATION_PREFIX}webhook-url",
    "auto_demote": f"metadata.annotations.{ANNOTATION_PREFIX}auto-demote",
    "owners": f"metadata.annotations.{ANNOTATION_PREFIX}owners",
}
_SOURCE_SPEC = "spec.indicator.spec.ratioMetric.good.metricSource.spec"


def _service_errors(index: int, exc: ValidationError) -> list[OpensloError]:
    out: list[OpensloError] = []
    for name, messages in getattr(exc, "message_dict", {"": exc.messages}).items():
        path = _FIELD_PATHS.get(name, f"{_SOURCE_SPEC}.{name}" if name else "")
        out.extend(OpensloError(index, path, message) for message in messages)
    return out


def _apply(slug: str, fields: dict[str, Any], *, by: Any, result: OpensloImport) -> None:
    existing = Slo.objects.filter(slug=slug).select_related("team", "agent").first()
    # The document is the whole definition: what it leaves out takes the default.
    complete = {**DEFAULTS, **fields}
    if existing is None:
        if result.dry_run:
            slo_check(None, slug=slug, **complete)
        else:
            slo_create(by=by, slug=slug, **complete)
        result.created.append(slug)
        return
    changed = bool(slo_check(existing, **complete))
    if changed and not result.dry_run:
        slo_update(existing, by=by, **complete)
    (result.updated if changed else result.unchanged).append(slug)


__all__ = [
    "OpensloError",
    "OpensloImport",
    "OpensloInvalid",
    "openslo_export",
    "openslo_export_all",
    "openslo_import",
    "openslo_load",
    "slo_openslo",
]
