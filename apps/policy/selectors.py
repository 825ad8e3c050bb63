from functools import lru_cache

from apps.policy.engine import CompiledPolicy
from apps.policy.models import PolicyVersion
from apps.policy.schema import PolicyDocument, policy_parse


def active_policy() -> CompiledPolicy:
    """The active version, compiled once per process and version (one indexed query per call).

    With no policy loaded yet, the empty policy applies: nothing is allowed, so every action
    asks a person (the documented default).
    """
    row = PolicyVersion.objects.filter(active=True).values_list("pk", "number").first()
    if row is None:
        return CompiledPolicy(PolicyDocument(), version=None)
    return _compiled(*row)


@lru_cache(maxsize=16)
def _compiled(pk: int, number: int) -> CompiledPolicy:
    source = PolicyVersion.objects.values_list("source", flat=True).get(pk=pk)
    return CompiledPolicy(policy_parse(source), version=number)
