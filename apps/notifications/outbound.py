"""Retried HTTP POSTs (chat webhooks, agent callbacks): claim, send, record, back off.

A row is claimed with a conditional UPDATE before anything is sent, pushing its
next_attempt_at forward by a lease; a second task for the same row (a duplicate message, the
sweep re-queueing a late one) finds nothing to claim and returns. After success nothing is
ever claimed again.
"""

import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from apps.notifications.models import OutboundPost

logger = logging.getLogger(__name__)

Post = TypeVar("Post", bound=OutboundPost)

TIMEOUT_SECONDS = 10.0
# Longer than a POST can take (connect + read timeouts), so a lease never expires mid-attempt.
LEASE = timedelta(seconds=60)
# Task ETAs and database clocks can disagree by a little; a retry that arrives a moment early
# must still be able to claim its row.
CLOCK_TOLERANCE = timedelta(seconds=2)
# A queued attempt this late was lost (broker outage, a worker killed): the sweep re-queues it.
SWEEP_GRACE = timedelta(minutes=2)
# Hosts that answer with cloud credentials; never a legitimate destination.
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data"}
)


@dataclass(frozen=True)
class PostOutcome:
    delivered: bool
    transient: bool
    status: int | None = None
    error: str = ""


def backoff_seconds(attempts: int) -> float:
    """30 s doubling per attempt, capped at 20 min: 8 attempts span about 52 minutes."""
    base = float(settings.OUTBOUND_BACKOFF_BASE_SECONDS)
    return min(base * 2 ** max(attempts - 1, 0), 1200.0)


def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # fd00:ec2::254 is AWS's IPv6 metadata endpoint.
    return (
        ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip == ipaddress.ip_address("fd00:ec2::254")
    )


def url_refusal(url: str, *, resolve: bool = True) -> str | None:
    """Why opsdash refuses to POST to this URL (link-local / metadata addresses), or None."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        return "This is not a valid URL."
    if parts.scheme not in ("http", "https") or not host:
        return "Use an http(s) URL with a host name."
    if host in METADATA_HOSTS:
        return f"{host} is a cloud metadata service; opsdash never posts there."
    addresses: list[str] = []
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        if resolve:
            try:
                addresses = [
                    str(info[4][0])
                    for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
                ]
            except (OSError, UnicodeError):
                addresses = []  # unresolvable now; checked again before every attempt
    for address in addresses:
        if _refused_address(address):
            return (
                f"{host} points at {address}, a link-local or metadata address; "
                "opsdash never posts there."
            )
    return None


def post_bytes(url: str, body: bytes, headers: dict[str, str]) -> PostOutcome:
    """One POST. 2xx lands; network errors, 5xx and 429 are worth retrying; the rest is not."""
    refusal = url_refusal(url)
    if refusal:
        return PostOutcome(delivered=False, transient=False, error=refusal)
    try:
        response = httpx.post(
            url,
            content=body,
            headers={"Content-Type": "application/json", "User-Agent": "opsdash", **headers},
            timeout=TIMEOUT_SECONDS,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        return PostOutcome(
            delivered=False, transient=True, error=f"{type(exc).__name__}: {exc}"[:500]
        )
    code = response.status_code
    if 200 <= code < 300:
        return PostOutcome(delivered=True, transient=False, status=code)
    error = f"HTTP {code}: {response.text[:200]}".strip()
    if code == 429 or code >= 500:
        return PostOutcome(delivered=False, transient=True, status=code, error=error)
    if 300 <= code < 400:
        error = f"HTTP {code}: redirects are not followed; set the final URL."
    return PostOutcome(delivered=False, transient=False, status=code, error=error)


def outbound_claim(model: type[Post], *, pk: int, now: datetime) -> Post | None:
    """Takes the row for one attempt, or None when it is done, given up, or taken."""
    claimed = model.objects.filter(  # type: ignore[attr-defined]
        pk=pk,
        delivered_at__isnull=True,
        gave_up_at__isnull=True,
        next_attempt_at__lte=now + CLOCK_TOLERANCE,
    ).update(attempts=F("attempts") + 1, next_attempt_at=now + LEASE, last_attempt_at=now)
    if not claimed:
        return None
    return model.objects.get(pk=pk)  # type: ignore[attr-defined]


def outbound_attempt(
    model: type[Post],
    *,
    pk: int,
    send: Callable[[Post, datetime], PostOutcome],
    max_attempts: int,
    now: datetime | None = None,
) -> float | None:
    """Makes one attempt; returns the seconds until the next one, or None when none is due."""
    now = now or timezone.now()
    row = outbound_claim(model, pk=pk, now=now)
    if row is None:
        return None
    outcome = send(row, now)
    row.last_status = outcome.status
    row.last_error = outcome.error
    fields = ["last_status", "last_error"]
    delay: float | None = None
    if outcome.delivered:
        row.delivered_at = now
        fields.append("delivered_at")
    elif not outcome.transient or row.attempts >= max_attempts:
        row.gave_up_at = now
        fields.append("gave_up_at")
    else:
        delay = backoff_seconds(row.attempts)
        row.next_attempt_at = now + timedelta(seconds=delay)
        fields.append("next_attempt_at")
    row.save(update_fields=fields)
    if row.gave_up_at:
        logger.warning("gave up on %s after %s attempts: %s", row, row.attempts, outcome.error)
    return delay


def outbound_due_ids(model: type[OutboundPost], *, now: datetime, limit: int = 500) -> list[int]:
    """Rows whose attempt is overdue by more than the grace: their queued task was lost."""
    return list(
        model.objects.filter(  # type: ignore[attr-defined]
            delivered_at__isnull=True,
            gave_up_at__isnull=True,
            next_attempt_at__lte=now - SWEEP_GRACE,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def enqueue(task: Any, *args: Any, countdown: float | None = None) -> None:
    """Queues a task; a broker outage is logged, never raised (the sweeps pick the work up)."""
    try:
        task.apply_async(args=list(args), countdown=countdown, retry=False)
    except Exception as exc:  # any broker error; the row stays due and the sweep finds it
        logger.warning("could not queue %s%s: %s", task.name, args, exc)
