"""Argument types shared by management commands."""

from datetime import UTC, datetime

from django.core.management.base import CommandError


def since_moment(text: str) -> datetime:
    """A command's --since: a day or a moment, in UTC unless it carries its own offset."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(
            f"--since {text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)."
        ) from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
