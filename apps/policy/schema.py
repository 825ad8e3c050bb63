"""The policy document: YAML, validated with msgspec, errors reported at the offending line.

rules:
  - id: no-destructive-db
    effect: deny                      # deny | allow | require_approval
    match: {action_type: ["db.drop_*", "db.truncate"]}
  - id: payments-restarts
    effect: allow
    match: {action_type: "k8s.restart_*", target: "k8s://*/payments/*", env: [prod, staging]}
  - id: shaky-in-prod
    effect: require_approval
    match: {env: prod}
    when: {confidence_below: 0.7}
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import yaml
from msgspec import Meta, Struct

Risk = Literal["low", "medium", "high", "critical"]
Mode = Literal["observe", "suggest", "auto_low_risk"]
RuleId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
Globs = str | list[str]


class Match(Struct, forbid_unknown_fields=True):
    """Which proposals a rule is about; every given field must match (globs, any of a list)."""

    action_type: Globs | None = None
    target: Globs | None = None
    env: Globs | None = None
    agent: Globs | None = None
    team: Globs | None = None


class When(Struct, forbid_unknown_fields=True):
    """Extra conditions for require_approval rules; any one that holds triggers the rule."""

    risk_at_least: Risk | None = None
    confidence_below: Annotated[float, Meta(ge=0, le=1)] | None = None
    blast_radius_above: Annotated[int, Meta(ge=0)] | None = None
    missing_rollback_plan: bool = False
    no_runbook: bool = False
    in_freeze: bool = False


class Rule(Struct, forbid_unknown_fields=True):
    id: RuleId
    effect: Literal["deny", "allow", "require_approval"]
    description: str = ""
    match: Match = msgspec.field(default_factory=Match)
    when: When | None = None
    approvers: Annotated[int, Meta(ge=1, le=10)] | None = None


class RiskClass(Struct, forbid_unknown_fields=True):
    match: Match
    risk: Risk


class FreezeWindow(Struct, forbid_unknown_fields=True):
    """A change freeze: absolute (start/end) or weekly (days + from/to), in a time zone."""

    name: str
    timezone: str = "UTC"
    start: str | None = None
    end: str | None = None
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None
    from_time: Annotated[str, Meta(pattern=r"^\d{2}:\d{2}$")] | None = msgspec.field(
        default=None, name="from"
    )
    to_time: Annotated[str, Meta(pattern=r"^\d{2}:\d{2}$")] | None = msgspec.field(
        default=None, name="to"
    )


class Approvers(Struct, forbid_unknown_fields=True):
    low: Annotated[int, Meta(ge=1, le=10)] = 1
    medium: Annotated[int, Meta(ge=1, le=10)] = 1
    high: Annotated[int, Meta(ge=1, le=10)] = 2
    critical: Annotated[int, Meta(ge=1, le=10)] = 2
    separation_of_duties: bool = False


Duration = Annotated[str, Meta(pattern=r"^\s*\d+\s*[smhdw]\s*$")]


class Deadline(Struct, forbid_unknown_fields=True):
    """How long a pending action of one risk waits before escalation, and before expiry."""

    escalate_after: Duration | None = None
    expire_after: Duration | None = None


class Deadlines(Struct, forbid_unknown_fields=True):
    """Per effective risk; `escalate_to` is the role group notified when one escalates."""

    low: Deadline = msgspec.field(default_factory=lambda: Deadline("4h", "24h"))
    medium: Deadline = msgspec.field(default_factory=lambda: Deadline("1h", "8h"))
    high: Deadline = msgspec.field(default_factory=lambda: Deadline("30m", "4h"))
    critical: Deadline = msgspec.field(default_factory=lambda: Deadline("15m", "2h"))
    escalate_to: Literal["approver", "sre_lead", "admin"] = "sre_lead"


class PolicyDocument(Struct, forbid_unknown_fields=True):
    rules: list[Rule] = []
    risk_classification: list[RiskClass] = []
    runbooks: list[str] = []
    autonomy_ceiling: dict[str, Mode] = {}
    freeze_windows: list[FreezeWindow] = []
    approvers: Approvers = msgspec.field(default_factory=Approvers)
    deadlines: Deadlines = msgspec.field(default_factory=Deadlines)
    blast_radius_parameter: str = "replicas"
    description: str = ""


@dataclass(frozen=True)
class PolicyError:
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path + ': ' if self.path else ''}{self.message}"


class PolicyInvalid(ValueError):
    def __init__(self, errors: list[PolicyError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


# Limits on hostile documents. A real policy is a few hundred lines without anchors; a
# "billion laughs" document multiplies a few aliases into gigabytes once traversed.
MAX_SOURCE_BYTES = 256 * 1024
MAX_ALIASES = 32
MAX_DEPTH = 32

# libyaml's parser when built in (about 6x faster on a large document); marks carry lines either way.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def policy_parse(text: str) -> PolicyDocument:
    """Parses and validates a policy; raises PolicyInvalid naming the line of the problem."""
    if not isinstance(text, str):
        raise PolicyInvalid([PolicyError(None, "", "the policy must be text (a YAML document)")])
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        line = text[: exc.start].count("\n") + 1
        raise PolicyInvalid(
            [PolicyError(line, "", "the text contains a character that is not valid Unicode")]
        ) from exc
    if size > MAX_SOURCE_BYTES:
        raise PolicyInvalid(
            [
                PolicyError(
                    None,
                    "",
                    f"the policy is {size // 1024} KB; the limit is {MAX_SOURCE_BYTES // 1024} KB",
                )
            ]
        )
    try:
        _guard_structure(text)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise PolicyInvalid([_yaml_error(exc, text)]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyInvalid(
            [PolicyError(1, "", "the policy must be a mapping (rules:, runbooks:, ...)")]
        )
    try:
        document = msgspec.convert(data, PolicyDocument)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `$")
        path = path.rstrip("`")
        raise PolicyInvalid(
            [PolicyError(_line_of(node, path, message), path.lstrip("."), message)]
        ) from exc
    errors = _semantic_errors(document, node)
    if errors:
        raise PolicyInvalid(errors)
    return document


def _guard_structure(text: str) -> None:
    """Refuses alias bombs and absurd nesting from the event stream, before anything is built."""
    aliases = depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise PolicyInvalid(
                    [
                        PolicyError(
                            _event_line(event),
                            "",
                            f"more than {MAX_ALIASES} aliases (*name); write the values out",
                        )
                    ]
                )
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise PolicyInvalid(
                    [
                        PolicyError(
                            _event_line(event),
                            "",
                            f"nested more than {MAX_DEPTH} levels deep",
                        )
                    ]
                )
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def _event_line(event: yaml.Event) -> int | None:
    return event.start_mark.line + 1 if event.start_mark is not None else None


def _yaml_error(exc: yaml.YAMLError, text: str) -> PolicyError:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        line: int | None = mark.line + 1
    elif isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1
    else:
        line = None
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
    return PolicyError(line, "", f"not valid YAML: {problem}")


def _semantic_errors(document: PolicyDocument, node: Any) -> list[PolicyError]:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    errors = []
    seen: set[str] = set()
    for i, rule in enumerate(document.rules):
        if rule.id in seen:
            errors.append(
                PolicyError(
                    _line_of(node, f"rules[{i}].id"),
                    f"rules[{i}].id",
                    f"rule id {rule.id!r} is used twice",
                )
            )
        seen.add(rule.id)
        if rule.when is not None and rule.effect != "require_approval":
            errors.append(
                PolicyError(
                    _line_of(node, f"rules[{i}].when"),
                    f"rules[{i}].when",
                    "`when` only applies to require_approval rules",
                )
            )
    for i, window in enumerate(document.freeze_windows):
        path = f"freeze_windows[{i}]"
        try:
            ZoneInfo(window.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(
                PolicyError(
                    _line_of(node, f"{path}.timezone"),
                    f"{path}.timezone",
                    f"unknown time zone {window.timezone!r}",
                )
            )
        absolute = window.start is not None or window.end is not None
        weekly = window.days is not None
        if absolute == weekly:
            errors.append(
                PolicyError(
                    _line_of(node, path),
                    path,
                    "give either start and end, or days with from and to",
                )
            )
        for name in ("start", "end") if absolute else ():
            value = getattr(window, name)
            problem = None
            if value is None:
                problem = f"{name} is missing"
            else:
                try:
                    datetime.fromisoformat(value)
                except ValueError:
                    problem = f"{value!r} is not a date and time like 2026-11-27T00:00"
            if problem:
                errors.append(
                    PolicyError(_line_of(node, f"{path}.{name}"), f"{path}.{name}", problem)
                )
    return errors


def _line_of(node: Any, path: str, message: str = "") -> int | None:
    """The 1-based line of `path` (like `.rules[2].effect`) in the composed YAML tree.

    msgspec names a mapping's entry `[...]` without its key; the entry is then the one whose
    value the message quotes ("Invalid enum value 'x'"), when there is one.
    """
    import re

    line = node.start_mark.line + 1 if node is not None else None
    quoted = re.search(r"'([^']*)'", message)
    for key, index, anykey in re.findall(r"\.?([^.\[\]]+)|\[(\d+)\]|\[(\.\.\.)\]", path):
        if node is None:
            break
        if key and isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == key), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            node = node.value[int(index)]
            line = node.start_mark.line + 1
        elif anykey and quoted and isinstance(node, yaml.MappingNode):
            match = next(
                (
                    (k, v)
                    for k, v in node.value
                    if isinstance(v, yaml.ScalarNode) and v.value == quoted.group(1)
                ),
                None,
            )
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        else:
            break
    return line
