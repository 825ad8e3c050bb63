"""Helpers for the files users download."""

# A spreadsheet runs a cell starting with one of these as a formula (tab and carriage return
# can hide the = after them).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(text: str) -> str:
    """The text for a CSV cell, quoted with a leading ' when it starts like a formula: model
    names come from agents' events and team names from bill tags, so a spreadsheet must show
    them, never run them."""
    return f"'{text}" if text[:1] in _FORMULA_STARTS else text
