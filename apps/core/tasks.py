"""The one decorator every opsdash Celery task goes through: names, limits, retries."""

from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

# Transient by nature: the database restarted or a connection dropped. Anything else is a bug
# and must surface, not loop.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)


def opsdash_task(
    name: str,
    *,
    time_limit: int = 300,
    retry_on: tuple[type[BaseException], ...] = TRANSIENT_ERRORS,
    max_retries: int = 5,
    acks_late: bool = False,
) -> Callable[[Callable[..., Any]], Any]:
    def decorate(fn: Callable[..., Any]) -> Any:
        return shared_task(
            name=name,
            autoretry_for=retry_on,
            retry_backoff=True,
            retry_backoff_max=120,
            retry_jitter=True,
            max_retries=max_retries,
            time_limit=time_limit,
            soft_time_limit=max(time_limit - 10, 1),
            acks_late=acks_late,
            ignore_result=True,
        )(fn)

    return decorate
