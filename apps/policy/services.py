import hashlib

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.policy.models import PolicyVersion
from apps.policy.schema import policy_parse


@transaction.atomic
def policy_version_create(
    *, source: str, created_by: str = "", note: str = "", activate: bool = True
) -> tuple[PolicyVersion, bool]:
    """Validates and stores a new version; returns (version, created).

    Loading the text that is already active is a no-op, so `load_policy` from git can run on
    every deploy. Raises PolicyInvalid (with line numbers) for a bad document.
    """
    policy_parse(source)
    digest = hashlib.sha256(source.encode()).hexdigest()
    active = PolicyVersion.objects.select_for_update().filter(active=True).first()
    if active is not None and active.sha256 == digest:
        return active, False
    number = (PolicyVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
    version = PolicyVersion.objects.create(
        number=number, source=source, sha256=digest, note=note, created_by=created_by
    )
    if activate:
        policy_version_activate(version=version)
    return version, True


@transaction.atomic
def policy_version_activate(*, version: PolicyVersion) -> PolicyVersion:
    # Deactivate first: the partial unique index allows one active row at any instant.
    PolicyVersion.objects.filter(active=True).exclude(pk=version.pk).update(active=False)
    PolicyVersion.objects.filter(pk=version.pk).update(active=True, activated_at=timezone.now())
    version.refresh_from_db()
    return version
