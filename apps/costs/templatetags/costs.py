from decimal import ROUND_HALF_UP, Decimal

from django import template

register = template.Library()


@register.filter
def usd(value: Decimal | None, places: int = 4) -> str:
    """$1,234.5678 / -$2.6740 (the sign before the $), half-up at `places` decimals; — for
    None."""
    if value is None:
        return "—"
    rounded = Decimal(value).quantize(Decimal(1).scaleb(-int(places)), ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.{int(places)}f}"


@register.filter
def usd_signed(value: Decimal | None, places: int = 4) -> str:
    """As `usd`, with + on amounts above zero (variances)."""
    text = usd(value, places)
    return f"+{text}" if value is not None and text[0] == "$" and Decimal(value) > 0 else text
