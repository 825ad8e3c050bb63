import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import template

register = template.Library()

LONG_TEXT = 160


@register.filter
def pretty_json(value: Any) -> str:
    """Readable JSON (not Python's repr) for the data panels."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


@register.filter
def split_fields(data: Any) -> dict[str, list[tuple[str, Any]]]:
    """Splits an event's data into short scalars, long texts and nested structures."""
    short: list[tuple[str, Any]] = []
    texts: list[tuple[str, Any]] = []
    nested: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        for key in sorted(data):
            value = data[key]
            if isinstance(value, dict | list):
                nested.append((key, value))
            elif isinstance(value, str) and (len(value) > LONG_TEXT or "\n" in value):
                texts.append((key, value))
            else:
                short.append((key, value))
    return {"short": short, "texts": texts, "nested": nested}


@register.filter
def money(value: Any) -> str:
    """An amount to the cent with thousands separators; a non-zero amount under half a cent
    shows as <0.01 (or >-0.01) rather than a 0.00 that reads as free."""
    if value is None or value == "":
        return ""
    amount = Decimal(value)
    cents = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if amount and not cents:
        return "<0.01" if amount > 0 else ">-0.01"
    return f"{cents:,.2f}"
