from dataclasses import asdict

from django.utils import timezone

from apps.actions.callbacks import callback_delivery_attempt
from apps.actions.deadlines import deadlines_sweep
from apps.core.tasks import opsdash_task
from apps.notifications.models import CallbackDelivery
from apps.notifications.outbound import enqueue, outbound_due_ids


@opsdash_task("actions.deadlines_sweep", time_limit=300)
def deadlines_sweep_task() -> dict[str, int]:
    return asdict(deadlines_sweep())


@opsdash_task("actions.callback_deliver", acks_late=True, time_limit=60)
def callback_deliver_task(delivery_id: int) -> None:
    """One attempt; the next is queued with its backoff (the claim makes duplicates no-ops)."""
    delay = callback_delivery_attempt(delivery_id=delivery_id)
    if delay is not None:
        enqueue(callback_deliver_task, delivery_id, countdown=delay)


@opsdash_task("actions.callbacks_sweep")
def callbacks_sweep_task() -> int:
    """The safety net: deliveries whose queued attempt was lost are queued again."""
    ids = outbound_due_ids(CallbackDelivery, now=timezone.now())
    for pk in ids:
        enqueue(callback_deliver_task, pk)
    return len(ids)
