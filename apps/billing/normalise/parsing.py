"""Cell parsers shared by every format: money, timestamps, text, tags, enumerations.

Values arrive as strings (CSV), or as Python objects from Parquet (datetime, Decimal, int,
lists of pairs for maps, lists of dicts for repeated structs). Floating-point Parquet columns
are cast to their shortest decimal string by the reader before they get here, so money is
always parsed from a string (or an exact Decimal/int) straight to Decimal.
"""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from typing import Any

# Literal markers exports use for "no value".
NULLS = frozenset({"", "NULL", "null", "Null", "None", "\\N"})
# Matches the model's DecimalField(max_digits=30, decimal_places=12).
MONEY_PLACES = Decimal("1e-12")
MAX_INTEGER_DIGITS = 18
# Arithmetic on money (sums, price x quantity) in 60 significant digits: the default context's
# 28 would round a stored value's 30 digits, and a billion of them summed.
WIDE = Context(prec=60)
MAX_TAGS_CHARS = 32 * 1024
MAX_TEXT_CHARS = 256
MAX_RESOURCE_ID_CHARS = 4096


class RowError(Exception):
    """A cell that cannot be read; the row is rejected and reported, the import goes on."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() in NULLS
    return False


def excerpt(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def money(value: Any, column: str) -> Decimal:
    amount = money_or_none(value, column)
    if amount is None:
        raise RowError(column, "a value is required")
    return amount


def money_or_none(value: Any, column: str) -> Decimal | None:
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int) and not isinstance(value, bool):
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if text in NULLS:
            return None
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise RowError(column, f"not a decimal number: {excerpt(text)!r}") from None
        if len(text) <= 13 and "e" not in text and "E" not in text:
            # The common case, and the fast path: at most 12 decimals and 13 digits.
            if not amount.is_finite():
                raise RowError(column, f"not a finite number: {excerpt(text)!r}")
            return amount
    elif value is None:
        return None
    else:
        raise RowError(column, f"not a decimal number: {excerpt(value)}")
    if not amount.is_finite():
        raise RowError(column, f"not a finite number: {excerpt(str(value))!r}")
    if amount.adjusted() >= MAX_INTEGER_DIGITS:
        raise RowError(column, f"out of range (more than {MAX_INTEGER_DIGITS} integer digits)")
    if amount.as_tuple().exponent < -12:  # type: ignore[operator]
        # Beyond the stored precision: a half-even rounding far below a cent.
        amount = amount.quantize(MONEY_PLACES, context=WIDE)
    return amount


class TimestampParser:
    """Aware UTC datetimes from ISO-8601 text with or without `T`/`Z`/offset, dates, or
    datetime objects. Exports repeat the same few hundred hour marks millions of times, so
    the parsed values are memoised (bounded)."""

    def __init__(self, cache_size: int = 20_000) -> None:
        self.cache: dict[str, datetime] = {}
        self.cache_size = cache_size

    def __call__(self, value: Any, column: str) -> datetime:
        parsed = self.parse_or_none(value, column)
        if parsed is None:
            raise RowError(column, "a timestamp is required")
        return parsed

    def parse_or_none(self, value: Any, column: str) -> datetime | None:
        if isinstance(value, datetime):
            # Parquet timestamps without a zone are UTC by the exporters' convention.
            if value.tzinfo is None:
                return value.replace(tzinfo=UTC)
            try:
                return value.astimezone(UTC)
            except OverflowError:
                raise RowError(column, f"timestamp out of range: {value}") from None
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        if value is None:
            return None
        if not isinstance(value, str):
            raise RowError(column, f"not a timestamp: {excerpt(value)}")
        cached = self.cache.get(value)
        if cached is not None:
            return cached
        text = value.strip()
        if text in NULLS:
            return None
        parsed = self._parse(text, column)
        if len(self.cache) >= self.cache_size:
            self.cache.clear()
        self.cache[value] = parsed
        return parsed

    @staticmethod
    def _parse(text: str, column: str) -> datetime:
        candidate = text
        if len(candidate) > 40:
            raise RowError(column, f"not a timestamp: {excerpt(text)!r}")
        if candidate.endswith(("z", "Z")):
            candidate = candidate[:-1] + "+00:00"
        # "2026-11-01 00:00:00 UTC" (BigQuery's CSV spelling).
        if candidate.endswith(" UTC"):
            candidate = candidate[:-4] + "+00:00"
        parsed: datetime | None
        try:
            parsed = datetime.fromisoformat(candidate)
        except ValueError:
            parsed = _us_date(candidate)
        if parsed is None:
            raise RowError(column, f"not a timestamp: {excerpt(text)!r}")
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+01:00
            raise RowError(column, f"timestamp out of range: {excerpt(text)!r}") from None


def _us_date(text: str) -> datetime | None:
    """MM/DD/YYYY, optionally followed by a time: Azure's cost details `Date` spelling."""
    head, _, rest = text.partition(" ")
    parts = head.split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    try:
        day = datetime(int(parts[2]), int(parts[0]), int(parts[1]))
        if rest:
            clock = datetime.strptime(rest.strip(), "%H:%M:%S")
            day = day.replace(hour=clock.hour, minute=clock.minute, second=clock.second)
    except ValueError:
        return None
    return day


def text(value: Any, column: str, limit: int = MAX_TEXT_CHARS) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        if isinstance(value, list | tuple | dict):
            raise RowError(column, f"expected text, not a {type(value).__name__}")
        value = str(value)
    stripped = value.strip()
    if stripped in NULLS:
        return ""
    if len(stripped) > limit:
        raise RowError(column, f"too long: {len(stripped)} characters (the limit is {limit})")
    return stripped


def required_text(value: Any, column: str, limit: int = MAX_TEXT_CHARS) -> str:
    result = text(value, column, limit)
    if not result:
        raise RowError(column, "a value is required")
    return result


def currency(value: Any, column: str) -> str:
    code = required_text(value, column, 16).upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise RowError(column, f"not an ISO 4217 currency code: {excerpt(code)!r}")
    return code


def enum(value: Any, column: str, mapping: dict[str, str], default: str | None = None) -> str:
    """A provider's enumerated value, matched without regard to case, spaces or underscores."""
    raw = text(value, column, 64)
    if not raw:
        if default is None:
            raise RowError(column, "a value is required")
        return default
    found = mapping.get(raw.lower().replace(" ", "").replace("_", ""))
    if found is None:
        raise RowError(column, f"unknown value {excerpt(raw)!r}")
    return found


def _tag_value(value: Any) -> str:
    if isinstance(value, str):
        # PostgreSQL's jsonb cannot hold NUL.
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if value is None:
        return ""
    return json.dumps(value, default=str)


def _tag_key(key: Any) -> str:
    return _tag_value(key if isinstance(key, str) else str(key))


def tags(value: Any, column: str) -> dict[str, str]:
    """Tags as a JSON object (with or without its braces, as Azure writes them), a JSON
    array of {key, value} (GCP labels), a Parquet map (list of pairs) or a dict."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {_tag_key(k): _tag_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return _tags_from_list(value, column)
    if not isinstance(value, str):
        raise RowError(column, f"tags must be a JSON object, not {type(value).__name__}")
    stripped = value.strip()
    if stripped in NULLS or stripped in ("{}", "[]"):
        return {}
    if len(stripped) > MAX_TAGS_CHARS:
        raise RowError(
            column, f"too long: {len(stripped)} characters (the limit is {MAX_TAGS_CHARS})"
        )
    if not stripped.startswith(("{", "[")):
        stripped = "{" + stripped + "}"
    try:
        parsed = json.loads(stripped)
        if "\\u" in stripped:
            # An escaped lone surrogate ("\ud800") is valid JSON but not storable text.
            json.dumps(parsed, ensure_ascii=False).encode()
    except (ValueError, UnicodeEncodeError, RecursionError):
        raise RowError(column, f"tags are not valid JSON: {excerpt(value)!r}") from None
    if isinstance(parsed, dict):
        return {_tag_key(k): _tag_value(v) for k, v in parsed.items()}
    if isinstance(parsed, list):
        return _tags_from_list(parsed, column)
    raise RowError(column, "tags must be a JSON object")


def _tags_from_list(items: list[Any], column: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items:
        if isinstance(item, dict) and "key" in item:
            result[_tag_key(item["key"])] = _tag_value(item.get("value"))
        elif isinstance(item, list | tuple) and len(item) == 2:
            result[_tag_key(item[0])] = _tag_value(item[1])
        else:
            raise RowError(column, "tags must be {key, value} pairs")
    return result


def month_start(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(moment: datetime) -> datetime:
    return (month_start(moment) + timedelta(days=32)).replace(day=1)
