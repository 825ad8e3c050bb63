"""Errors that fail a whole billing file (as opposed to one row)."""


class FileLevelError(Exception):
    """The file cannot be imported at all: unreadable, wrong format, missing columns.
    Nothing of it is written; the message is shown to the person as is."""

    def __init__(self, message: str, *, missing: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.missing = missing or []
