"""Slack's Web API and response URLs through slack_sdk, with failures sorted into "try again
later" (network, rate limit, Slack's own errors) and "Slack said no" (bad channel, expired URL)."""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

logger = logging.getLogger(__name__)

# Within a request Slack waits 3 s for our answer; calls made there must give up before that.
IN_REQUEST_TIMEOUT = 2
TASK_TIMEOUT = 10

_TRANSIENT_API_ERRORS = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}
# Slack's own advice: a request older than this may be a replay of one captured earlier.
MAX_REQUEST_AGE_SECONDS = 5 * 60
_SETTINGS = ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "SLACK_APPROVALS_CHANNEL")


class SlackUnavailable(Exception):
    """Slack could not be reached or asked us to come back later: worth a retry."""


class SlackRefused(Exception):
    """Slack answered and said no (unknown channel, missing scope, expired response URL)."""


@dataclass(frozen=True)
class SlackConfig:
    signing_secret: str
    bot_token: str
    channel: str
    api_url: str


def slack_missing_settings() -> list[str]:
    return [name for name in _SETTINGS if not getattr(settings, name, "")]


def slack_config() -> SlackConfig | None:
    """The Slack settings, or None when any is missing: then chat approvals are off."""
    if slack_missing_settings():
        return None
    return SlackConfig(
        signing_secret=settings.SLACK_SIGNING_SECRET,
        bot_token=settings.SLACK_BOT_TOKEN,
        channel=settings.SLACK_APPROVALS_CHANNEL,
        api_url=settings.SLACK_API_URL,
    )


def slack_web_client(config: SlackConfig, *, timeout: int = TASK_TIMEOUT) -> WebClient:
    client = WebClient(token=config.bot_token, base_url=config.api_url, timeout=timeout)
    if timeout <= IN_REQUEST_TIMEOUT:
        # No second attempt inside a request: two would overrun Slack's 3 s.
        client.retry_handlers = []
    return client


@contextmanager
def slack_errors(method: str) -> Iterator[None]:
    """Turns slack_sdk's and the network's errors into SlackUnavailable or SlackRefused."""
    try:
        yield
    except SlackApiError as exc:
        error = str(exc.response.get("error", "")) if exc.response is not None else ""
        status = exc.response.status_code if exc.response is not None else 0
        if status == 429 or status >= 500 or error in _TRANSIENT_API_ERRORS:
            raise SlackUnavailable(f"Slack {method}: {error or status}") from exc
        raise SlackRefused(f"Slack {method}: {error or status}") from exc
    except (OSError, HTTPException) as exc:
        raise SlackUnavailable(f"Slack {method}: {exc}") from exc


def response_url_allowed(url: str) -> bool:
    """Only Slack's hooks host (or the configured API host, for a Slack-compatible server)
    gets our messages: the URL comes from a signed payload, but a bug must not make us post
    anywhere a payload says."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname == "hooks.slack.com":
        return True
    api = urlsplit(settings.SLACK_API_URL)
    return (parts.scheme, parts.netloc) == (api.scheme, api.netloc)


def slack_respond(
    response_url: str, *, text: str, timeout: int = TASK_TIMEOUT, **fields: Any
) -> None:
    """Posts to an interaction's response_url (ephemeral notes, message replacement)."""
    if not response_url_allowed(response_url):
        raise SlackRefused(f"response_url {response_url!r} is not a Slack address")
    try:
        response = WebhookClient(response_url, timeout=timeout).send(text=text, **fields)
    except (OSError, HTTPException) as exc:
        raise SlackUnavailable(f"Slack response_url: {exc}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise SlackUnavailable(f"Slack response_url: {response.status_code} {response.body}")
    if response.status_code != 200:
        raise SlackRefused(f"Slack response_url: {response.status_code} {response.body}")


def slack_request_problem(
    config: SlackConfig, *, body: bytes, timestamp: str | None, signature: str | None
) -> str | None:
    """Why a request cannot be trusted as Slack's, or None when its signature holds."""
    if not timestamp or not signature:
        return (
            "The request is not signed: X-Slack-Signature and X-Slack-Request-Timestamp are "
            "required."
        )
    try:
        sent = int(timestamp)
    except ValueError:
        return "X-Slack-Request-Timestamp must be a Unix time in seconds."
    if abs(time.time() - sent) > MAX_REQUEST_AGE_SECONDS:
        return (
            "The request's timestamp is more than 5 minutes from now: refused as a possible "
            "replay (check the server clock if Slack's requests all fail)."
        )
    if not SignatureVerifier(config.signing_secret).is_valid(
        body=body, timestamp=timestamp, signature=signature
    ):
        return "The Slack signature does not match this body (check SLACK_SIGNING_SECRET)."
    return None
