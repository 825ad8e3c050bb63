import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from apps.policy.engine import CompiledPolicy
from apps.policy.models import PolicyShadow, PolicyVersion, ShadowDecision
from apps.policy.schema import PolicyDocument, policy_parse

# How long a process trusts its copy of the shadow configuration. Starting or stopping a
# shadow takes effect at once in the process that did it and within this lag everywhere else;
# in exchange a proposal pays no query for the shadow in the common case.
SHADOW_CACHE_SECONDS = 5.0


def active_policy() -> CompiledPolicy:
    """The active version, compiled once per process and version (one indexed query per call).

    With no policy loaded yet, the empty policy applies: nothing is allowed, so every action
    asks a person (the documented default).
    """
    row = PolicyVersion.objects.filter(active=True).values_list("pk", "sha256").first()
    return policy_compiled(f"{row[0]}:{row[1]}" if row else None)


# A subquery naming the active version as "<pk>:<sha256>", for callers that fold the lookup
# into a query they make anyway (the proposal hot path).
ACTIVE_VERSION_SQL = "SELECT id || ':' || sha256 FROM policy_policyversion WHERE active"


def policy_compiled(key: str | None) -> CompiledPolicy:
    """The version named "<pk>:<sha256>", compiled once per process; None is the empty default.

    The text's digest is part of the key because a restored or rolled-back database can give
    a primary key to another text.
    """
    if key is None:
        return _EMPTY
    return _compiled(key)


_EMPTY = CompiledPolicy(PolicyDocument(), version=None)


@lru_cache(maxsize=16)
def _compiled(key: str) -> CompiledPolicy:
    pk, _, digest = key.partition(":")
    source, number = PolicyVersion.objects.values_list("source", "number").get(
        pk=int(pk), sha256=digest
    )
    return CompiledPolicy(policy_parse(source), version=number)


@lru_cache(maxsize=16)
def compiled_version(pk: int, number: int) -> CompiledPolicy:
    """A saved version compiled once per process (versions are immutable)."""
    source = PolicyVersion.objects.values_list("source", flat=True).get(pk=pk)
    return CompiledPolicy(policy_parse(source), version=number)


@dataclass(frozen=True)
class ShadowConfig:
    shadow_id: int
    version_id: int
    number: int
    agents: frozenset[str]


_shadow_lock = threading.Lock()
_shadow_cached: tuple[float, ShadowConfig | None] = (0.0, None)


def shadow_config() -> ShadowConfig | None:
    """The running shadow, from this process's cache (at most SHADOW_CACHE_SECONDS old)."""
    global _shadow_cached
    expires, config = _shadow_cached
    now = time.monotonic()
    if now < expires:
        return config
    with _shadow_lock:
        # Another thread may have refreshed it while this one waited for the lock.
        expires, config = _shadow_cached
        if now < expires:
            return config
        row = (
            PolicyShadow.objects.filter(running=True)
            .values_list("pk", "version_id", "version__number", "agents")
            .first()
        )
        config = (
            None if row is None else ShadowConfig(row[0], row[1], row[2], frozenset(row[3] or ()))
        )
        _shadow_cached = (now + SHADOW_CACHE_SECONDS, config)
    return config


def shadow_config_forget() -> None:
    """Drops this process's cached shadow configuration (after a start or stop)."""
    global _shadow_cached
    _shadow_cached = (0.0, None)


def policy_versions() -> list[PolicyVersion]:
    """Every version without its source (the list pages and the API), newest first."""
    return list(PolicyVersion.objects.defer("source").order_by("-number"))


def policy_version_get(number: int) -> PolicyVersion | None:
    return PolicyVersion.objects.filter(number=number).first()


def policy_active_version() -> PolicyVersion | None:
    return PolicyVersion.objects.filter(active=True).first()


@dataclass
class ShadowSummary:
    shadow: PolicyShadow | None
    evaluated: int
    differing: int
    transitions: list[tuple[str, str, int]]
    rows: list[ShadowDecision]


def shadow_summary(*, shadow: PolicyShadow | None = None, limit: int = 200) -> ShadowSummary:
    """The running (else the latest) shadow: how many proposals it saw, and where it differed."""
    from django.db.models import Count

    if shadow is None:
        shadow = (
            PolicyShadow.objects.select_related("version")
            .order_by("-running", "-started_at", "-id")
            .first()
        )
    if shadow is None:
        return ShadowSummary(None, 0, 0, [], [])
    decisions = ShadowDecision.objects.filter(shadow=shadow)
    counts = decisions.values("active_status", "shadow_status", "differs").annotate(n=Count("id"))
    evaluated = sum(c["n"] for c in counts)
    transitions = sorted(
        ((c["active_status"], c["shadow_status"], c["n"]) for c in counts if c["differs"]),
        key=lambda t: (-t[2], t[0], t[1]),
    )
    rows = list(decisions.filter(differs=True).order_by("-evaluated_at", "-id")[:limit])
    return ShadowSummary(shadow, evaluated, sum(t[2] for t in transitions), transitions, rows)
