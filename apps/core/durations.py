import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_ttl(text: str) -> timedelta | None:
    """'30d', '12h', '90m'; 'never' or '' for no expiry. Raises ValueError with a usable message."""
    if text.strip().lower() in ("", "never", "none"):
        return None
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration: use a number and s, m, h, d or w, e.g. 30d.")
    value = int(match.group(1))
    if value <= 0:
        raise ValueError("A duration must be positive.")
    return timedelta(**{_UNITS[match.group(2)]: value})
