"""The rules of an SLO definition, shared by every way of writing one (API, form, OpenSLO).

`slo_fields_clean` checks all fields at once and collects every problem, so a caller gets one
ValidationError naming each bad field. A field that does not apply to the SLO's SLI or scope
(a threshold on an acceptance SLO, an agent on a team SLO…) is refused when the caller sends
it, and quietly reset when it is only inherited from the stored SLO, so switching an SLO from
one SLI to another in a PATCH works.
"""

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from apps.fleet.models import Agent, Team
from apps.slo.models import (
    ROLLING_DAYS,
    SAFETY_KINDS,
    THRESHOLD_KINDS,
    SliKind,
    Slo,
    SloScope,
    WindowKind,
)

OBJECTIVE_MIN = Decimal("0.5")
OBJECTIVE_MAX = Decimal("0.99999")
QUERY_MAX_BYTES = 4096
NAME_MAX = 200
DESCRIPTION_MAX = 4000
AGENT_VERSION_MAX = 64
WEBHOOK_URL_MAX = 500
OWNERS_MAX = 50
# Decimal(14, 6): eight digits before the point.
THRESHOLD_MAX = Decimal("99999999.999999")
ROLLBACK_WINDOW_MIN = timedelta(minutes=1)
ROLLBACK_WINDOW_MAX = timedelta(days=30)
DEFAULT_ROLLBACK_WINDOW = timedelta(hours=24)
# OpenSLO metadata.name is an RFC 1123 label; the slug is that name.
SLUG_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Path segments the pages and the API use beside /slos/<slug>: an SLO may not be called so.
RESERVED_SLUGS = frozenset({"new", "openslo", "edit", "delete"})

THRESHOLD_UNITS: dict[str, str] = {
    SliKind.TIME_TO_PROPOSE: "seconds",
    SliKind.COST_PER_ACTION: "USD",
    SliKind.ENERGY_PER_ACTION: "Wh",
}

# The fields a caller may set. `owners` is a list of usernames; team and agent are instances
# or slugs.
EDITABLE_FIELDS = (
    "slug",
    "name",
    "description",
    "sli",
    "scope",
    "team",
    "agent",
    "agent_version",
    "objective",
    "window_kind",
    "window_days",
    "time_zone",
    "threshold",
    "rollback_window",
    "good_query",
    "total_query",
    "alerting",
    "notify_in_app",
    "notify_email",
    "notify_webhook",
    "webhook_url",
    "auto_demote",
    "owners",
)
# What the SLO counts: a change here makes its rollups stale.
COUNTED_FIELDS = (
    "sli",
    "scope",
    "team",
    "agent",
    "agent_version",
    "threshold",
    "rollback_window",
    "good_query",
    "total_query",
)
DEFAULTS: dict[str, Any] = {
    "description": "",
    "scope": SloScope.ALL,
    "team": None,
    "agent": None,
    "agent_version": "",
    "window_kind": WindowKind.ROLLING,
    "window_days": 28,
    "time_zone": "UTC",
    "threshold": None,
    "rollback_window": DEFAULT_ROLLBACK_WINDOW,
    "good_query": "",
    "total_query": "",
    "alerting": True,
    "notify_in_app": True,
    "notify_email": False,
    "notify_webhook": False,
    "webhook_url": "",
    "auto_demote": False,
    "owners": [],
}
BOOL_FIELDS = (
    "alerting",
    "notify_in_app",
    "notify_email",
    "notify_webhook",
    "auto_demote",
)

_DURATION_RE = re.compile(r"^\s*(\d{1,7})\s*([smhdw])\s*$")
_DURATION_UNITS = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


def duration_parse(text: str) -> timedelta:
    """'90m', '24h', '2d' → timedelta; ValueError with a message people can act on."""
    match = _DURATION_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"“{str(text)[:40]}” is not a duration: write a whole number and a unit, "
            "s, m, h, d or w (e.g. 30m, 24h, 2d)."
        )
    return int(match[1]) * _DURATION_UNITS[match[2]]


def duration_format(value: timedelta) -> str:
    """The shortest exact shorthand: 24h, 90m, 2d, 45s."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def decimal_text(value: Decimal | None) -> str | None:
    """A Decimal without trailing zeros or exponent: 0.99900 → '0.999', 120.000000 → '120'."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text


def threshold_unit(sli: str) -> str:
    return THRESHOLD_UNITS.get(sli, "")


def refuse_unknown(fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError(
            {name: [f"Unknown field “{name}”; an SLO has no such setting."] for name in unknown}
        )


def slo_fields_clean(
    values: dict[str, Any], *, given: set[str], current: Slo | None
) -> tuple[dict[str, Any], list[Any]]:
    """Checks every rule; returns the model fields and the owners. Collects all errors first."""
    errors: dict[str, list[str]] = {}

    def fail(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    out: dict[str, Any] = {}

    # Identity and text.
    slug = values.get("slug")
    if current is None:
        if not isinstance(slug, str) or not slug:
            fail("slug", "A slug is required: lowercase letters, digits and hyphens.")
        elif not SLUG_RE.match(slug):
            fail(
                "slug",
                "Use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a "
                "letter or digit (it is the OpenSLO metadata.name).",
            )
        elif slug in RESERVED_SLUGS:
            fail("slug", f"“{slug}” is reserved by opsdash's pages; choose another slug.")
        elif Slo.objects.filter(slug=slug).exists():
            errors.setdefault("slug", []).append(duplicate_error(slug).messages[0])
        else:
            out["slug"] = slug
    _text(values, "name", NAME_MAX, required=True, out=out, fail=fail)
    _text(values, "description", DESCRIPTION_MAX, required=False, out=out, fail=fail)

    # The SLI.
    sli = values.get("sli")
    if sli not in SliKind.values:
        fail("sli", f"Choose one of: {', '.join(SliKind.values)}.")
        sli = None
    else:
        out["sli"] = sli

    # Scope and target.
    scope = values.get("scope")
    team = _resolve(values.get("team"), Team, "team", fail)
    agent = _resolve(values.get("agent"), Agent, "agent", fail)
    if scope not in SloScope.values:
        fail("scope", f"Choose one of: {', '.join(SloScope.values)}.")
    else:
        out["scope"] = scope
        if scope == SloScope.AGENT:
            if agent is None and "agent" not in errors:
                fail("agent", "An agent-scoped SLO needs an agent.")
            team = _not_applicable(
                "team", team, given, fail, "An agent-scoped SLO takes an agent, not a team."
            )
        elif scope == SloScope.TEAM:
            if team is None and "team" not in errors:
                fail("team", "A team-scoped SLO needs a team.")
            agent = _not_applicable(
                "agent", agent, given, fail, "A team-scoped SLO takes a team, not an agent."
            )
        else:
            team = _not_applicable(
                "team", team, given, fail, "An SLO over all agents takes no team; scope: team."
            )
            agent = _not_applicable(
                "agent", agent, given, fail, "An SLO over all agents takes no agent; scope: agent."
            )
    out["team"] = team
    out["agent"] = agent

    version = values.get("agent_version") or ""
    if not isinstance(version, str):
        fail("agent_version", "The agent version must be text.")
    elif len(version) > AGENT_VERSION_MAX:
        fail("agent_version", f"At most {AGENT_VERSION_MAX} characters.")
    elif version != version.strip():
        fail("agent_version", "Remove the spaces around the agent version.")
    elif version and scope == SloScope.ALL:
        # Versions are named per agent: "v2" of one agent says nothing about another's.
        version = _not_applicable(
            "agent_version",
            version,
            given,
            fail,
            "Narrowing to an agent version needs an agent or team scope "
            "(versions are named per agent).",
        )
    out["agent_version"] = version or ""

    # Objective and window.
    objective = _decimal(values.get("objective"), "objective", fail)
    if objective is not None:
        if not OBJECTIVE_MIN <= objective <= OBJECTIVE_MAX:
            fail(
                "objective",
                f"The objective is a ratio between {OBJECTIVE_MIN} and {OBJECTIVE_MAX} "
                "(e.g. 0.99 for 99 %).",
            )
        elif _places(objective) > 5:
            fail("objective", "At most 5 decimal places (e.g. 0.99995).")
        else:
            out["objective"] = objective
    elif "objective" not in errors:
        fail("objective", "An objective is required (e.g. 0.99).")

    window_kind = values.get("window_kind")
    if window_kind not in WindowKind.values:
        fail("window_kind", f"Choose one of: {', '.join(WindowKind.values)}.")
    else:
        out["window_kind"] = window_kind
    days = values.get("window_days")
    zone = values.get("time_zone")
    if window_kind == WindowKind.ROLLING:
        if isinstance(days, bool) or days not in ROLLING_DAYS:
            fail(
                "window_days",
                f"A rolling window is {', '.join(map(str, ROLLING_DAYS))} days long.",
            )
        else:
            out["window_days"] = days
        # A rolling window has no time zone: keep the stored value neutral.
        if "time_zone" in given and zone not in ("UTC", "", None):
            fail("time_zone", "Only calendar-month windows take a time zone.")
        out["time_zone"] = "UTC"
    elif window_kind == WindowKind.CALENDAR_MONTH:
        if not isinstance(zone, str) or zone not in _time_zones():
            fail(
                "time_zone",
                f"“{str(zone)[:64]}” is not an IANA time zone (e.g. UTC, Europe/Paris, "
                "America/New_York).",
            )
        else:
            out["time_zone"] = zone
        if isinstance(days, int) and not isinstance(days, bool) and days in ROLLING_DAYS:
            out["window_days"] = days
        else:
            out["window_days"] = DEFAULTS["window_days"]

    # SLI-specific settings.
    threshold = _decimal(values.get("threshold"), "threshold", fail)
    if sli in THRESHOLD_KINDS:
        unit = THRESHOLD_UNITS[sli]
        if threshold is None:
            if "threshold" not in errors:
                fail("threshold", f"This SLI needs a threshold in {unit}.")
        elif threshold <= 0:
            fail("threshold", f"The threshold must be more than 0 {unit}.")
        elif threshold > THRESHOLD_MAX:
            fail("threshold", f"The threshold is at most {THRESHOLD_MAX.normalize():f} {unit}.")
        elif _places(threshold) > 6:
            fail("threshold", "At most 6 decimal places.")
        else:
            out["threshold"] = threshold
    elif sli is not None:
        out["threshold"] = _not_applicable(
            "threshold",
            threshold,
            given,
            fail,
            "Only time_to_propose, cost_per_action and energy_per_action SLOs take a threshold.",
        )

    rollback = values.get("rollback_window")
    if isinstance(rollback, str):
        try:
            rollback = duration_parse(rollback)
        except ValueError as exc:
            fail("rollback_window", str(exc))
            rollback = None
    if rollback is not None and not isinstance(rollback, timedelta):
        fail("rollback_window", "Give the rollback window as a duration such as 24h.")
        rollback = None
    if sli == SliKind.ROLLBACK:
        if rollback is None:
            if "rollback_window" not in errors:
                fail("rollback_window", "A rollback SLO needs a rollback window (e.g. 24h).")
        elif not ROLLBACK_WINDOW_MIN <= rollback <= ROLLBACK_WINDOW_MAX:
            fail("rollback_window", "The rollback window is between 1m and 30d.")
        elif rollback.total_seconds() % 1:
            fail("rollback_window", "The rollback window is a whole number of seconds.")
        else:
            out["rollback_window"] = rollback
    elif sli is not None:
        if rollback is not None and rollback != DEFAULT_ROLLBACK_WINDOW:
            _not_applicable(
                "rollback_window",
                rollback,
                given,
                fail,
                "Only rollback SLOs take a rollback window.",
            )
        out["rollback_window"] = DEFAULT_ROLLBACK_WINDOW

    for name in ("good_query", "total_query"):
        query = values.get(name) or ""
        if not isinstance(query, str):
            fail(name, "The query must be text (PromQL).")
            continue
        if sli == SliKind.PROMQL:
            label = "good" if name == "good_query" else "total"
            if not query.strip():
                fail(name, f"A PromQL SLO needs a {label} query.")
            elif len(query.encode("utf-8", "surrogatepass")) > QUERY_MAX_BYTES:
                fail(name, f"The query is over {QUERY_MAX_BYTES // 1024} KB.")
            elif "\x00" in query:
                fail(name, "The query contains a NUL character.")
            else:
                out[name] = query.strip()
                if current is None or out[name] != getattr(current, name):
                    for problem in _promql_errors(out[name]):
                        fail(name, problem)
        elif sli is not None:
            out[name] = _not_applicable(name, query, given, fail, "Only PromQL SLOs take queries.")

    # Alerting and notifications.
    for name in BOOL_FIELDS:
        value = values.get(name)
        if not isinstance(value, bool):
            fail(name, "true or false.")
        else:
            out[name] = value
    if out.get("auto_demote"):
        if sli is not None and sli not in SAFETY_KINDS:
            reason = "Only safety SLOs (rollback, accuracy) may demote an agent."
        elif scope == SloScope.ALL:
            reason = (
                "Automatic demotion needs an agent or team scope: it demotes the agents the "
                "SLO covers."
            )
        else:
            reason = ""
        if reason:
            if "auto_demote" in given:
                fail("auto_demote", reason)
            out["auto_demote"] = False
    url = values.get("webhook_url") or ""
    if not isinstance(url, str):
        fail("webhook_url", "The webhook URL must be text.")
    elif len(url) > WEBHOOK_URL_MAX:
        fail("webhook_url", f"At most {WEBHOOK_URL_MAX} characters.")
    elif url and not _http_url(url):
        fail("webhook_url", "Give an http:// or https:// URL with a host.")
    else:
        out["webhook_url"] = url

    owners = _owners(values.get("owners"), fail)

    if errors:
        raise ValidationError(errors)
    return out, owners


def _text(
    values: dict[str, Any],
    name: str,
    limit: int,
    *,
    required: bool,
    out: dict[str, Any],
    fail: Any,
) -> None:
    value = values.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        fail(name, f"The {name} must be text.")
        return
    value = value.strip()
    if required and not value:
        fail(name, f"A {name} is required.")
    elif len(value) > limit:
        fail(name, f"At most {limit:,} characters (this is {len(value):,}).")
    elif "\x00" in value:
        fail(name, "The text contains a NUL character.")
    else:
        out[name] = value


def _not_applicable(name: str, value: Any, given: set[str], fail: Any, message: str) -> Any:
    """A value for a field the SLO does not use: refused when sent, reset when inherited."""
    if value in (None, "", False):
        return value if value is not None else None
    if name in given:
        fail(name, message)
    return None if not isinstance(value, str) else ""


def _resolve(value: Any, model: Any, name: str, fail: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, model):
        return value
    if not isinstance(value, str):
        fail(name, f"Give the {name}'s slug.")
        return None
    # PostgreSQL refuses NUL in text parameters: such a value can match nothing.
    found = (
        model.objects.filter(slug=value).first()
        if len(value) <= 100 and "\x00" not in value
        else None
    )
    if found is None:
        fail(name, f"There is no {name} “{value[:100]}”.")
    return found


def _decimal(value: Any, name: str, fail: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        fail(name, "Give a number.")
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float | str) and len(str(value)) <= 40:
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            fail(name, f"“{str(value)[:40]}” is not a number.")
            return None
    else:
        fail(name, "Give a number.")
        return None
    if not number.is_finite():
        fail(name, "Give a finite number.")
        return None
    return number


def _places(number: Decimal) -> int:
    exponent = number.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _owners(value: Any, fail: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        fail("owners", "Give the owners as a list of usernames.")
        return []
    if len(value) > OWNERS_MAX:
        fail("owners", f"At most {OWNERS_MAX} owners.")
        return []
    names = sorted(set(value))
    if any("\x00" in name or len(name) > 150 for name in names):
        fail("owners", "A username has at most 150 characters and no NUL character.")
        return []
    people = list(
        get_user_model().objects.filter(username__in=names, is_active=True).order_by("username")
    )
    missing = sorted(set(names) - {p.get_username() for p in people})
    if missing:
        fail(
            "owners",
            f"No active person with the username {', '.join(m[:150] for m in missing[:10])}.",
        )
    return people


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in url


_ZONES: frozenset[str] | None = None


def _time_zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones()) | {"UTC"}
    return _ZONES


def comparable(value: Any) -> Any:
    if isinstance(value, Team | Agent):
        return value.pk
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def duplicate_error(slug: str) -> ValidationError:
    return ValidationError(
        {"slug": [f"An SLO called “{slug}” already exists; edit it or choose another slug."]},
        code="duplicate",
    )


def is_duplicate(exc: ValidationError) -> bool:
    """True when the only problem is a slug taken by another SLO (the API answers 409)."""
    errors = getattr(exc, "error_dict", {})
    return list(errors) == ["slug"] and all(
        "already exists" in message for e in errors["slug"] for message in e.messages
    )


def _promql_errors(query: str) -> list[str]:
    """What Prometheus says is wrong with a new or changed query. Only refusals block saving;
    an unset or unreachable PROMETHEUS_URL is a warning there, so it never blocks here."""
    from apps.slo.promql import promql_check

    return list(promql_check(query).errors)
