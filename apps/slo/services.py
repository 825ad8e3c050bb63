"""Writes of SLO definitions: create, update, delete.

Callers (the API, the form, the OpenSLO import) check shape; the rules live in apps.slo.rules
so the three agree. Every failure is a django ValidationError whose message_dict names the
field. The names other modules import from here (limits, duration helpers) are re-exported.
"""

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.slo.models import SliKind, Slo, SloRollup
from apps.slo.rules import (
    AGENT_VERSION_MAX,
    COUNTED_FIELDS,
    DEFAULT_ROLLBACK_WINDOW,
    DEFAULTS,
    DESCRIPTION_MAX,
    EDITABLE_FIELDS,
    NAME_MAX,
    OWNERS_MAX,
    QUERY_MAX_BYTES,
    SLUG_RE,
    THRESHOLD_UNITS,
    WEBHOOK_URL_MAX,
    comparable,
    decimal_text,
    duplicate_error,
    duration_format,
    duration_parse,
    is_duplicate,
    refuse_unknown,
    slo_fields_clean,
    threshold_unit,
)

logger = logging.getLogger(__name__)

__all__ = [
    "AGENT_VERSION_MAX",
    "DEFAULTS",
    "DEFAULT_ROLLBACK_WINDOW",
    "DESCRIPTION_MAX",
    "EDITABLE_FIELDS",
    "NAME_MAX",
    "OWNERS_MAX",
    "QUERY_MAX_BYTES",
    "SLUG_RE",
    "THRESHOLD_UNITS",
    "WEBHOOK_URL_MAX",
    "decimal_text",
    "duration_format",
    "duration_parse",
    "is_duplicate",
    "slo_check",
    "slo_create",
    "slo_delete",
    "slo_update",
    "slo_values",
    "threshold_unit",
]


def slo_create(*, by: Any, **fields: Any) -> Slo:
    """Creates an SLO; raises ValidationError naming each bad field."""
    refuse_unknown(fields)
    values = {**DEFAULTS, **fields}
    cleaned, owners = slo_fields_clean(values, given=set(fields), current=None)
    now = timezone.now()
    slo = Slo(**cleaned, created_by=_username(by), created_at=now, updated_at=now)
    try:
        with transaction.atomic():
            slo.save()
            slo.owners.set(owners)
            _rollups_rebuild(slo)
    except IntegrityError as exc:
        # A concurrent create with the same slug passed the check above.
        if Slo.objects.filter(slug=slo.slug).exists():
            raise duplicate_error(slo.slug) from exc
        raise
    logger.info("SLO %s created by %s", slo.slug, _username(by))
    return slo


def slo_update(slo: Slo, *, by: Any, **fields: Any) -> Slo:
    """Changes the given fields; bumps `revision` and rebuilds the rollups when what the SLO
    counts changed. Raises ValidationError naming each bad field."""
    cleaned, owners, changed = _update_plan(slo, fields)
    if not changed:
        # Sending the stored definition again (a deploy from git) changes nothing.
        return slo
    counted_changed = bool(changed & set(COUNTED_FIELDS))
    owners_changed = "owners" in changed
    with transaction.atomic():
        locked = Slo.objects.select_for_update().get(pk=slo.pk)
        for name, value in cleaned.items():
            setattr(locked, name, value)
        if counted_changed:
            locked.revision += 1
        locked.updated_at = timezone.now()
        locked.save()
        if owners_changed:
            locked.owners.set(owners)
        if counted_changed:
            if locked.sli == SliKind.PROMQL:
                # PromQL rollups come from Prometheus, not facts: the rebuild leaves them alone.
                # Drop the old definition's minutes; the refresh task then backfills the window
                # from the new queries (no rows means "start from the window's start").
                SloRollup.objects.filter(slo=locked).delete()
            _rollups_rebuild(locked)
    logger.info(
        "SLO %s updated by %s (revision %s%s)",
        locked.slug,
        _username(by),
        locked.revision,
        ", rollups rebuilt" if counted_changed else "",
    )
    return locked


def slo_check(slo: Slo | None, **fields: Any) -> set[str]:
    """Checks `fields` as slo_create (slo None) or slo_update would, writing nothing; returns
    the names of the fields that would change. Raises the same ValidationError."""
    if slo is None:
        refuse_unknown(fields)
        slo_fields_clean({**DEFAULTS, **fields}, given=set(fields), current=None)
        return set(EDITABLE_FIELDS)
    return _update_plan(slo, fields)[2]


def _update_plan(slo: Slo, fields: dict[str, Any]) -> tuple[dict[str, Any], list[Any], set[str]]:
    refuse_unknown(fields)
    if "slug" in fields and fields["slug"] != slo.slug:
        raise ValidationError(
            {
                "slug": [
                    "The slug names the SLO in URLs, alerts and OpenSLO files and cannot change; "
                    "create a new SLO (and delete this one) to rename it."
                ]
            }
        )
    current = slo_values(slo)
    cleaned, owners = slo_fields_clean({**current, **fields}, given=set(fields), current=slo)
    changed = {
        name for name, value in cleaned.items() if comparable(value) != comparable(current[name])
    }
    if sorted(p.get_username() for p in owners) != current["owners"]:
        changed.add("owners")
    return cleaned, owners, changed


def slo_delete(slo: Slo, *, by: Any) -> None:
    """Deletes the SLO with its rollups, status and alerts (they mean nothing without it)."""
    slug = slo.slug
    slo.delete()
    logger.info("SLO %s deleted by %s", slug, _username(by))


def slo_values(slo: Slo) -> dict[str, Any]:
    """The editable fields of a stored SLO, in the form slo_create/slo_update take them."""
    values = {name: getattr(slo, name) for name in EDITABLE_FIELDS if name != "owners"}
    values["owners"] = sorted(slo.owners.values_list("username", flat=True))
    return values


def _username(by: Any) -> str:
    if by is None:
        return ""
    if isinstance(by, str):
        return by[:150]
    return str(getattr(by, "username", ""))[:150]


def _rollups_rebuild(slo: Slo) -> None:
    from apps.slo.rollups import slo_rollups_rebuild

    slo_rollups_rebuild(slo)
