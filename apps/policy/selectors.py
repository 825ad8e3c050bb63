from functools import lru_cache

from apps.policy.engine import CompiledPolicy
from apps.policy.models import PolicyVersion
from apps.policy.schema import PolicyDocument, policy_parse


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
