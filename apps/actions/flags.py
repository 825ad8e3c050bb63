"""Hallucination flags: what in a proposal its own context does not back up.

Computed on read, in bulk (one query for a page of actions), never stored: the context of an
action keeps growing (late events are normal), and a flag must describe what is known now.

Three checks, each conservative and explainable (a flag names what it compared, and a check
that finds nothing raises nothing):

* citations of files, resources or log lines that appear in none of the context events;
* timestamps in the rationale or citations outside the incident window or after the proposal;
* a confident proposal whose rationale states a figure (error rate, CPU, latency …) that every
  figure the context reports for the same metric clearly contradicts.

The context of an action: its own context, alert, tool_call and llm_call events, plus the
alerts and context reads of its incident. An LLM call's *response* is never evidence: it is the
model's own claim, and a hallucinated citation usually appears there first.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from django.db.models import Case, F, JSONField, Q, When
from django.db.models.functions import JSONObject

from apps.actions.models import Action
from apps.audit.models import Event, EventType

__all__ = [
    "CONFIDENT",
    "INCIDENT_WINDOW_MARGIN",
    "Flag",
    "FlagKind",
    "actions_flags",
]


class FlagKind:
    CITATION = "citation_not_in_context"
    TIMESTAMP = "timestamp_outside_window"
    FIGURE = "contradicts_context"


_LABELS = {
    FlagKind.CITATION: "unbacked citation",
    FlagKind.TIMESTAMP: "timestamp",
    FlagKind.FIGURE: "contradicts context",
}


@dataclass(frozen=True)
class Flag:
    """One thing a person should double-check before trusting the proposal."""

    kind: str
    message: str
    checked: str

    @property
    def label(self) -> str:
        return _LABELS.get(self.kind, self.kind)


# Agents often cite what led up to an alert (a deploy, the first errors): the window opens a
# little before the first alert.
INCIDENT_WINDOW_MARGIN = timedelta(minutes=30)
# Log sources and the agent's clock may run slightly ahead of opsdash's.
CLOCK_SKEW = timedelta(minutes=2)
CONFIDENT = 0.8

_ACTION_CONTEXT_TYPES = (
    EventType.CONTEXT,
    EventType.ALERT,
    EventType.TOOL_CALL,
    EventType.LLM_CALL,
)
_INCIDENT_CONTEXT_TYPES = (EventType.ALERT, EventType.CONTEXT)
# Keys whose values are a model's answer, not evidence it was given.
_NOT_EVIDENCE_KEYS = frozenset({"response", "completion", "output_text"})
_DISPLAY_MAX = 100
# Timestamps and figures are looked for in the first 20,000 characters of each text: enough
# for any rationale or summary, and it bounds the cost of a hostile 256 KB one.
_SCAN_LIMIT = 20_000


@dataclass
class _ContextEvent:
    id: Any
    ts: datetime
    type: str
    data: dict[str, Any]
    _evidence: str | None = None

    @property
    def evidence(self) -> str:
        """Every string the agent was shown, normalised; computed once per event, which an
        incident's alerts share with all of its actions."""
        if self._evidence is None:
            self._evidence = "\n".join(
                _normalise(s) for s in _strings(self.data, skip_keys=_NOT_EVIDENCE_KEYS) if s
            )
        return self._evidence

    def describe(self) -> str:
        """How a person finds this event on the action page."""
        data = self.data if isinstance(self.data, dict) else {}
        at = f"at {self.ts.astimezone(UTC):%H:%M:%S} UTC"
        if self.type == EventType.CONTEXT:
            return f"the context read from {_short(str(data.get('source') or '?'), 40)} {at}"
        if self.type == EventType.ALERT:
            return f'the alert "{_short(str(data.get("name") or "?"), 60)}" {at}'
        if self.type == EventType.TOOL_CALL:
            return f"the {_short(str(data.get('tool') or '?'), 40)} tool call {at}"
        return f"the LLM call {at}"


@dataclass
class _Context:
    events: list[_ContextEvent] = field(default_factory=list)

    @property
    def first_alert_at(self) -> datetime | None:
        alerts = [e.ts for e in self.events if e.type == EventType.ALERT]
        return min(alerts) if alerts else None


# --- public API ---------------------------------------------------------------------------------


def actions_flags(actions: Sequence[Action]) -> dict[str, list[Flag]]:
    """Flags per action_id for a page of actions, in one query (every id is in the answer)."""
    flags: dict[str, list[Flag]] = {a.action_id: [] for a in actions}
    proposed = [a for a in actions if a.proposed_at is not None]
    if not proposed:
        return flags
    contexts = _contexts_load(proposed)
    for action in proposed:
        context = contexts.get(action.action_id) or _Context()
        flags[action.action_id] = [
            *_citation_flags(action, context),
            *_timestamp_flags(action, context),
            *_figure_flags(action, context),
        ]
    return flags


def _contexts_load(actions: Sequence[Action]) -> dict[str, _Context]:
    action_ids = [a.action_id for a in actions]
    incident_ids = sorted({a.incident_id for a in actions if a.incident_id})
    where = Q(action_id__in=action_ids, type__in=_ACTION_CONTEXT_TYPES)
    if incident_ids:
        where |= Q(incident_id__in=incident_ids, type__in=_INCIDENT_CONTEXT_TYPES)
    by_action: dict[str, list[_ContextEvent]] = defaultdict(list)
    by_incident: dict[str, list[_ContextEvent]] = defaultdict(list)
    rows = (
        Event.objects.filter(where)
        .order_by("ts", "id")
        # An LLM call's answer is never evidence and is the bulk of its row: only what the
        # model was shown is fetched.
        .annotate(
            evidence=Case(
                When(
                    type=EventType.LLM_CALL,
                    then=JSONObject(model=F("data__model"), request=F("data__request")),
                ),
                default=F("data"),
                output_field=JSONField(),
            )
        )
        .values_list("id", "ts", "type", "action_id", "incident_id", "evidence")
    )
    for event_id, ts, event_type, action_id, incident_id, data in rows:
        item = _ContextEvent(event_id, ts, event_type, data if isinstance(data, dict) else {})
        if action_id and event_type in _ACTION_CONTEXT_TYPES:
            by_action[action_id].append(item)
        if incident_id and event_type in _INCIDENT_CONTEXT_TYPES:
            by_incident[incident_id].append(item)
    contexts: dict[str, _Context] = {}
    for action in actions:
        seen: set[Any] = set()
        events: list[_ContextEvent] = []
        for item in [
            *by_action.get(action.action_id, ()),
            *by_incident.get(action.incident_id or "", ()),
        ]:
            if item.id not in seen:
                seen.add(item.id)
                events.append(item)
        events.sort(key=lambda e: (e.ts, str(e.id)))
        contexts[action.action_id] = _Context(events)
    return contexts


# --- shared text helpers ------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"


def _normalise(text: str) -> str:
    # split/join: about twice as fast as a regex over the kilobytes of an LLM prompt.
    return " ".join(text.split()).strip(_QUOTES).strip().casefold()


def _short(text: str, limit: int = _DISPLAY_MAX) -> str:
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _strings(value: Any, *, skip_keys: frozenset[str] = frozenset()) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in skip_keys:
                yield from _strings(item, skip_keys=skip_keys)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, skip_keys=skip_keys)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _context_phrase(context: _Context) -> str:
    return _plural(len(context.events), "context event")


# --- a. citations -------------------------------------------------------------------------------

_URI = re.compile(r"^[a-z][a-z0-9+.-]{1,20}://\S+$", re.IGNORECASE)
_FILE_EXT = (
    r"log|txt|out|err|ya?ml|json|conf|cfg|ini|toml|env|py|go|js|ts|java|rb|rs|sh|sql|tf|md|xml|csv"
)
_PATH = re.compile(
    rf"^(?:(?:~|\.{{1,2}})?/\S+|[A-Za-z]:\\\S+|[\w.-]+(?:/[\w.@-]+)*\.(?:{_FILE_EXT}))$",
    re.IGNORECASE,
)
_LINE_SUFFIX = re.compile(r"(?::\d+(?::\d+)?|#L\d+(?:-L?\d+)?)$")
_RESOURCE = re.compile(r"^[\w.-]+(?:/[\w.:@-]+)+/?$")
_LOG_LEVEL = r"(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL|CRIT|PANIC)"
_LOG_LINE = re.compile(
    r"(?:\blevel=\w+|\bmsg=|\blvl=\w+"
    rf"|^\s*\[?\d{{4}}-\d{{2}}-\d{{2}}[T ]\S*+\s+\[?{_LOG_LEVEL}\b"
    rf"|^\s*\[?{_LOG_LEVEL}\]?[:\s])"
)
_KEY_VALUES = re.compile(r"\b\w+=\S+")
_LABELLED = re.compile(r"^([A-Za-z][\w .-]{0,39}):\s+(\S.*)$", re.DOTALL)
_LEADING_TS = re.compile(r"^\s*\[?\d{4}-\d{2}-\d{2}[T ][\d:.,]+(?:Z|[+-]\d{2}:?\d{2})?\]?\s+")

_URI_KEYS = ("uri", "url", "path", "file", "resource")
_LINE_KEYS = ("line", "log", "log_line")
_TEXT_KEYS = ("text", "quote", "excerpt")


@dataclass(frozen=True)
class _Cited:
    what: str  # "log line", "file", …: how the flag names it
    display: str
    needles: tuple[str, ...]  # found when any of these occurs in the context


def _is_log_line(text: str) -> bool:
    return bool(_LOG_LINE.search(text)) or len(_KEY_VALUES.findall(text)) >= 2


def _classify_string(text: str) -> _Cited | None:
    """What a free-form citation points at, or None for prose that cannot be checked."""
    text = text.strip().strip(_QUOTES).strip()
    if not text or len(text) > 4000:
        return None
    labelled = _LABELLED.match(text)
    if labelled and "://" not in text[: labelled.end(1) + 3]:
        # "loki: level=error …": the label names the source, the rest is what is cited.
        detail = _classify_string(labelled.group(2))
        if detail is not None:
            return _Cited(detail.what, text, detail.needles)
    if _URI.match(text):
        bare = _LINE_SUFFIX.sub("", text)
        after_scheme = bare.split("://", 1)[1]
        what = "file" if text.lower().startswith("file://") else "resource"
        return _Cited(what, text, _unique(bare, after_scheme.rstrip("/")))
    if "\n" not in text and _PATH.match(text):
        bare = _LINE_SUFFIX.sub("", text)
        return _Cited("file", text, _unique(bare, bare.lstrip("./~")))
    if _is_log_line(text):
        return _Cited("log line", text, _unique(text, _LEADING_TS.sub("", text)))
    if " " not in text and _RESOURCE.match(text):
        return _Cited("resource", text, _unique(text.rstrip("/")))
    return None


def _unique(*candidates: str) -> tuple[str, ...]:
    out: list[str] = []
    for candidate in candidates:
        norm = _normalise(candidate)
        # Too short to mean anything as a substring ("a", "/").
        if len(norm) >= 3 and norm not in out:
            out.append(norm)
    return tuple(out)


def _classify_dict(citation: dict[str, Any]) -> list[_Cited]:
    """A structured citation: its most specific fields are checked, the `source` label last."""
    fields = {str(k).lower(): v for k, v in citation.items()}
    cited: list[_Cited] = []
    for key in _LINE_KEYS + _TEXT_KEYS:
        value = fields.get(key)
        if isinstance(value, str) and value.strip():
            what = "log line" if key in _LINE_KEYS else "quoted text"
            cited.append(_Cited(what, value, _unique(value, _LEADING_TS.sub("", value))))
            break
    for key in _URI_KEYS:
        value = fields.get(key)
        if isinstance(value, str) and value.strip():
            found = _classify_string(value)
            if found is None or found.what in ("log line",):
                found = _Cited(
                    key if key in ("file", "resource") else "resource", value, _unique(value)
                )
            cited.append(found)
            break
    if not cited:
        source = fields.get("source")
        if isinstance(source, str) and source.strip():
            cited.append(_Cited("source", source, _unique(source)))
    return [c for c in cited if c.needles]


def _citations_classify(citations: Any) -> tuple[list[_Cited], int]:
    """(checkable citations, how many could not be checked)."""
    if not isinstance(citations, list):
        citations = [citations] if citations else []
    checkable: list[_Cited] = []
    unchecked = 0
    for citation in citations:
        if isinstance(citation, dict):
            found = _classify_dict(citation)
        elif isinstance(citation, str):
            one = _classify_string(citation)
            found = [one] if one is not None and one.needles else []
        else:
            found = []
        if found:
            checkable.extend(found)
        else:
            unchecked += 1
    return checkable, unchecked


def _evidence_text(context: _Context) -> str:
    return "\n".join(event.evidence for event in context.events)


def _citation_flags(action: Action, context: _Context) -> list[Flag]:
    cited, unchecked = _citations_classify(action.citations)
    if not cited:
        return []
    n_cited = len(cited) + unchecked
    checked = (
        f"Checked {len(cited)} of {_plural(n_cited, 'citation')} against "
        f"{_context_phrase(context)} of this action and its incident"
        if unchecked
        else f"Checked {_plural(len(cited), 'citation')} against {_context_phrase(context)} "
        "of this action and its incident"
    )
    checked += (
        f" (sources, URIs, queries, summaries and data; LLM answers excluded); "
        f"{_plural(unchecked, 'free-text citation')} cannot be checked."
        if unchecked
        else " (sources, URIs, queries, summaries and data; LLM answers excluded)."
    )
    if not context.events:
        return [
            Flag(
                FlagKind.CITATION,
                f"Cites {_plural(len(cited), 'file, resource or log line', 'files, resources or log lines')}, "
                "but no context (alerts, context reads, tool or LLM calls) was reported for this "
                "action or its incident.",
                checked,
            )
        ]
    haystack = _evidence_text(context)
    flags = []
    for item in cited:
        if any(needle in haystack for needle in item.needles):
            continue
        flags.append(
            Flag(
                FlagKind.CITATION,
                f'Cites {item.what} "{_short(item.display)}", which appears in none of the '
                f"{_context_phrase(context)}.",
                checked,
            )
        )
    return flags


# --- b. timestamps ------------------------------------------------------------------------------

_TIMESTAMP = re.compile(
    r"(?<![\d])(?P<y>\d{4})(?P<sep>[-/])(?P<mo>\d{2})(?P=sep)(?P<d>\d{2})"
    r"[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?"
    r"(?:\s?(?P<z>Z|UTC|GMT|[+-]\d{2}:?\d{2}))?(?![\d])"
)


def _timestamps(text: str) -> Iterator[tuple[datetime, str]]:
    """(instant, as written) for each date-and-time; a time without a zone is read as UTC.

    Dates without a time are left alone: "since 2026-11-20" does not name an instant.
    """
    for m in _TIMESTAMP.finditer(text):
        try:
            micro = int((m.group("f") or "0")[:6].ljust(6, "0"))
            value = datetime(
                int(m.group("y")),
                int(m.group("mo")),
                int(m.group("d")),
                int(m.group("h")),
                int(m.group("mi")),
                int(m.group("s") or 0),
                micro,
                tzinfo=UTC,
            )
        except ValueError:
            continue
        zone = m.group("z")
        if zone and zone[0] in "+-":
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            value -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        yield value, m.group(0)


def _fmt_ts(value: datetime) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _fmt_duration(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _timestamp_flags(action: Action, context: _Context) -> list[Flag]:
    proposed_at = action.proposed_at
    assert proposed_at is not None
    texts = [action.rationale or "", *_strings(action.citations)]
    found: dict[datetime, str] = {}
    for text in texts:
        for value, written in _timestamps(text[:_SCAN_LIMIT]):
            found.setdefault(value, written)
    if not found:
        return []
    alert_times = [t for t in (context.first_alert_at, action.first_alert_at) if t is not None]
    first_alert = min(alert_times) if alert_times else None
    n = _plural(len(found), "timestamp")
    if first_alert is not None:
        opens = first_alert - INCIDENT_WINDOW_MARGIN
        checked = (
            f"Checked {n} in the rationale and citations against the incident window "
            f"{_fmt_ts(opens)} to {_fmt_ts(proposed_at)} (from "
            f"{_fmt_duration(INCIDENT_WINDOW_MARGIN)} before the first alert to the proposal)."
        )
    else:
        opens = None
        checked = (
            f"Checked {n} in the rationale and citations against the proposal time "
            f"{_fmt_ts(proposed_at)}; no alert was reported, so only later times are flagged."
        )
    flags = []
    for value, written in sorted(found.items()):
        if value > proposed_at + CLOCK_SKEW:
            flags.append(
                Flag(
                    FlagKind.TIMESTAMP,
                    f'Mentions "{written}", {_fmt_duration(value - proposed_at)} after the '
                    f"proposal was made ({_fmt_ts(proposed_at)}).",
                    checked,
                )
            )
        elif opens is not None and first_alert is not None and value < opens:
            flags.append(
                Flag(
                    FlagKind.TIMESTAMP,
                    f'Mentions "{written}", {_fmt_duration(first_alert - value)} before the '
                    f"first alert ({_fmt_ts(first_alert)}), outside the incident window.",
                    checked,
                )
            )
    return flags


# --- c. figures that contradict the context -----------------------------------------------------


@dataclass(frozen=True)
class _Metric:
    key: str
    label: str
    unit: str  # "%" or "ms": the unit values are compared in
    names: str  # regex alternation of how people write it


_METRICS = (
    _Metric(
        "error_rate",
        "error rate",
        "%",
        r"error[ _-]?(?:rate|ratio|percentage)|5xx[ _-]?(?:rate|ratio)|failure[ _-]?rate",
    ),
    _Metric("cpu", "CPU", "%", r"cpu(?:[ _-]?(?:usage|utili[sz]ation|load|use))?"),
    _Metric("memory", "memory", "%", r"mem(?:ory)?(?:[ _-]?(?:usage|utili[sz]ation|use))?"),
    _Metric("disk", "disk usage", "%", r"disk(?:[ _-]?(?:usage|utili[sz]ation|use|used))?"),
    _Metric(
        "latency_p99",
        "p99 latency",
        "ms",
        r"p99[ _-]?latency|latency[ _-]?\(?p99\)?|p99",
    ),
    _Metric(
        "latency_p95",
        "p95 latency",
        "ms",
        r"p95[ _-]?latency|latency[ _-]?\(?p95\)?|p95",
    ),
    _Metric(
        "latency_p50",
        "median latency",
        "ms",
        r"(?:p50|median)[ _-]?latency|latency[ _-]?\(?(?:p50|median)\)?|p50",
    ),
)
_METRIC_BY_GROUP = {f"m{i}": m for i, m in enumerate(_METRICS)}
_METRIC_NAMES = "|".join(f"(?P<m{i}>{m.names})" for i, m in enumerate(_METRICS))
_NUMBER = r"\d+(?:\.\d+)?"
_UNIT = r"\s?%|\s?percent\b|\s?pct\b|\s?ms\b|\s?milliseconds?\b|\s?s\b|\s?secs?\b|\s?seconds?\b"
# Words that may sit between a metric and its value ("error rate is at 12%").
_FILLER = (
    r"is|was|are|were|at|of|now|currently|still|reached|hit|hits|hitting|running|stands|"
    r"sits|peaked|peaking|spiked|jumped|rose|climbed|increased|went|up|to|around|about|"
    r"approximately|roughly|nearly|almost|~|≈|=|:"
)
# Bounds, not measurements: "error rate above 5%" says nothing checkable about the value.
_BOUND = re.compile(
    r"\b(?:above|over|below|under|exceeds?|exceeding|more than|less than|greater than|"
    r"at least|at most|threshold|limit|target|slo|objective|budget)\b|[<>≤≥]",
    re.IGNORECASE,
)
_FIGURE = re.compile(
    rf"(?<![\w-])(?:{_METRIC_NAMES})(?![\w-])"
    rf"(?P<filler>(?:\s*(?:{_FILLER})(?=[\s\d~≈=:])){{0,4}}"
    rf"(?:\s+from\s+{_NUMBER}\s*(?:{_UNIT})?\s+to)?)\s*"
    rf"(?P<num>{_NUMBER})(?P<unit>{_UNIT})",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Figure:
    metric: _Metric
    values: tuple[float, ...]  # in the metric's unit; two readings when the unit is ambiguous
    display: str
    where: str


def _to_unit(metric: _Metric, number: float, unit: str) -> float | None:
    unit = unit.strip().lower()
    if metric.unit == "%":
        return number if unit in ("%", "percent", "pct") else None
    if unit in ("ms", "millisecond", "milliseconds"):
        return number
    if unit in ("s", "sec", "secs", "second", "seconds"):
        return number * 1000
    return None


_MORE_VALUES = re.compile(rf"(?<![\w.])(?P<num>{_NUMBER})(?P<unit>{_UNIT})")
_SENTENCE_END = re.compile(r"[.;!?](?:\s|$)|\n")


def _prose_figures(text: str, where: str, *, series: bool = False) -> Iterator[_Figure]:
    """Figures written as "<metric> <filler> <number><unit>".

    With `series`, later numbers of the same unit in the same sentence belong to the figure too
    ("error rate 2.1% at 09:00, 12.4% at 09:04"): a claim matching any of them is not
    contradicted.
    """
    matches = list(_FIGURE.finditer(text))
    for index, m in enumerate(matches):
        filler = m.group("filler") or ""
        if _BOUND.search(filler) or _BOUND.search(text[max(0, m.start() - 20) : m.start()]):
            continue
        metric = next(
            _METRIC_BY_GROUP[g] for g, v in m.groupdict().items() if g in _METRIC_BY_GROUP and v
        )
        value = _to_unit(metric, float(m.group("num")), m.group("unit"))
        if value is None:
            continue
        values = [value]
        shown_end = m.end()
        if series:
            stop = len(text)
            sentence_end = _SENTENCE_END.search(text, m.end())
            if sentence_end:
                stop = sentence_end.start()
            if index + 1 < len(matches):
                stop = min(stop, matches[index + 1].start())
            for more in _MORE_VALUES.finditer(text, m.end(), stop):
                extra = _to_unit(metric, float(more.group("num")), more.group("unit"))
                if extra is not None:
                    values.append(extra)
                    shown_end = more.end()
        yield _Figure(metric, tuple(values), _short(text[m.start() : shown_end], 80), where)


_KEY_UNIT = re.compile(
    r"^(?P<name>.+?)(?:[_-](?P<unit>percent|percentage|pct|ratio|fraction|ms|millis|seconds|secs|s))?$"
)


def _metric_for_name(name: str) -> _Metric | None:
    name = name.strip().lower().replace(".", "_")
    for metric in _METRICS:
        if re.fullmatch(metric.names, name, re.IGNORECASE):
            return metric
    return None


def _structured_value(
    metric: _Metric, name: str, number: float, unit: str | None
) -> tuple[float, ...] | None:
    """The value(s) a number under a metric key may mean, or None when it cannot be compared."""
    if not math.isfinite(number):
        return None
    unit = (unit or "").lower()
    if metric.unit == "%":
        if unit in ("percent", "percentage", "pct", "%"):
            return (number,)
        if unit in ("ratio", "fraction"):
            return (number * 100,)
        # Without a unit, "cpu": 4 may be cores and "memory": 512 megabytes; only rates and
        # utilisations are shares. error_rate 0.05 may be a fraction or a percentage, so both
        # readings must disagree before a flag; above 1 it can only be a percentage.
        if not unit and (metric.key == "error_rate" or "util" in name):
            return (number,) if number > 1 else (number, number * 100)
        return None
    if unit in ("ms", "millis", "milliseconds"):
        return (number,)
    if unit in ("s", "secs", "seconds", "sec"):
        return (number * 1000,)
    return None  # a latency without a unit is not comparable


def _structured_figures(value: Any, where: str, depth: int = 0) -> Iterator[_Figure]:
    if depth > 6:
        return
    if isinstance(value, dict):
        # {"metric": "error_rate", "value": 2.1, "unit": "%"}
        name = value.get("metric") or value.get("name") or value.get("__name__")
        number = value.get("value")
        if isinstance(name, str) and _is_number(number) and len(name) <= 200:
            split = _KEY_UNIT.match(name.lower())
            metric = _metric_for_name(split.group("name")) if split else None
            unit = value.get("unit") if isinstance(value.get("unit"), str) else None
            unit = unit or (split.group("unit") if split else None)
            if metric is not None:
                values = _structured_value(metric, name.lower(), float(number), unit)
                if values is not None:
                    shown = f"{name} = {_fmt_num(float(number))}{_unit_suffix(unit)}"
                    yield _Figure(metric, values, shown, where)
        # {"error_rate_percent": 2.1, "cpu_utilisation": 0.4}
        for key, item in value.items():
            if isinstance(key, str) and _is_number(item) and len(key) <= 200:
                split = _KEY_UNIT.match(key.lower())
                metric = _metric_for_name(split.group("name")) if split else None
                if metric is None or split is None:
                    continue
                values = _structured_value(metric, key.lower(), float(item), split.group("unit"))
                if values is not None:
                    yield _Figure(metric, values, f"{key} = {_fmt_num(float(item))}", where)
            elif isinstance(item, dict | list):
                yield from _structured_figures(item, where, depth + 1)
    elif isinstance(value, list):
        for item in value[:500]:
            yield from _structured_figures(item, where, depth + 1)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _unit_suffix(unit: str | None) -> str:
    if not unit:
        return ""
    return "%" if unit in ("%", "percent", "pct", "percentage") else f" {unit}"


def _fmt_num(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.4g}"


# Prose that holds measurements; queries hold thresholds and selectors, not readings.
_FIGURE_TEXT_KEYS = frozenset({"query", "arguments", "request", "response"})


def _context_figures(context: _Context) -> list[_Figure]:
    figures: list[_Figure] = []
    for event in context.events:
        # LLM calls are the agent's own reasoning, not the context's figures.
        if event.type == EventType.LLM_CALL:
            continue
        where = event.describe()
        for text in _strings(event.data, skip_keys=_FIGURE_TEXT_KEYS):
            figures.extend(_prose_figures(text[:_SCAN_LIMIT], where, series=True))
        data = {k: v for k, v in event.data.items() if k not in _FIGURE_TEXT_KEYS}
        figures.extend(_structured_figures(data, where))
    return figures


def _clearly_different(a: float, b: float, unit: str) -> bool:
    """At least 1.5 times apart and by more than noise (1 point of a percentage, 20 ms)."""
    floor = 1.0 if unit == "%" else 20.0
    low, high = sorted((abs(a), abs(b)))
    if high - low < floor:
        return False
    return low == 0 or high / low >= 1.5


def _figure_flags(action: Action, context: _Context) -> list[Flag]:
    if action.confidence is None or action.confidence < CONFIDENT or not action.rationale:
        return []
    claims = list(_prose_figures(action.rationale[:_SCAN_LIMIT], "the rationale"))
    if not claims:
        return []
    figures = _context_figures(context)
    by_metric: dict[str, list[_Figure]] = defaultdict(list)
    for figure in figures:
        by_metric[figure.metric.key].append(figure)
    checkable = [c for c in claims if by_metric.get(c.metric.key)]
    if not checkable:
        return []
    compared = sorted({c.metric.label for c in checkable})
    n_figures = sum(len(by_metric[key]) for key in {c.metric.key for c in checkable})
    checked = (
        f"Compared {_plural(len(checkable), 'figure')} in the rationale ({', '.join(compared)}) "
        f"with {_plural(n_figures, 'figure')} the context reports for the same "
        f"{'metric' if len(compared) == 1 else 'metrics'}; a flag needs every one of them to "
        "differ by at least 1.5 times (and by 1 point or 20 ms)."
    )
    flags = []
    for claim in checkable:
        claimed = claim.values[0]
        unit = claim.metric.unit
        reported = by_metric[claim.metric.key]
        if not all(all(_clearly_different(claimed, v, unit) for v in f.values) for f in reported):
            continue
        closest = min(reported, key=lambda f: min(abs(v - claimed) for v in f.values))
        others = len(reported) - 1
        more = f" (and {_plural(others, 'other figure')}, none close)" if others else ""
        flags.append(
            Flag(
                FlagKind.FIGURE,
                f'The rationale says "{claim.display}" at confidence {action.confidence:.2f}, '
                f'but {closest.where} reports "{closest.display}"{more}.',
                checked,
            )
        )
    return flags
