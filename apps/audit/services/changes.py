from datetime import datetime
from typing import Any

from django.utils import timezone

from apps.audit.models import ChangeRecord


def change_record(
    *,
    subject_type: str,
    subject_id: int,
    subject: str,
    op: str,
    by: Any,
    changes: dict[str, list[Any]],
    at: datetime | None = None,
) -> ChangeRecord:
    """Records a person's change to a setting no agent owns (`changes`: {field: [old, new]},
    JSON values). Call inside the transaction that makes the change, so both commit or none."""
    return ChangeRecord.objects.create(
        subject_type=subject_type,
        subject_id=subject_id,
        subject=subject[:200],
        op=op,
        by=(getattr(by, "username", "") or str(by or ""))[:150],
        at=at or timezone.now(),
        changes=changes,
    )
