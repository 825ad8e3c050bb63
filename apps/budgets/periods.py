"""Budget periods in local days of the budget's time zone (DST-safe: days, not hours)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from apps.budgets.models import BudgetPeriod


def local_day(moment: datetime, zone: str) -> date:
    return moment.astimezone(ZoneInfo(zone)).date()


def period_days(period: str, rolling_days: int | None, day: date) -> tuple[date, date]:
    """The first and last local day (inclusive) of the period holding `day`."""
    if period == BudgetPeriod.DAILY:
        return day, day
    if period == BudgetPeriod.WEEKLY:
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=6)
    if period == BudgetPeriod.MONTHLY:
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return first, following - timedelta(days=1)
    if period == BudgetPeriod.ROLLING and rolling_days:
        return day - timedelta(days=rolling_days - 1), day
    raise ValueError(f"Unknown budget period {period!r}.")


def period_key(period: str, rolling_days: int | None, day: date) -> date:
    """What names the period for crossings and allowances: its first day; for a rolling
    window, which moves every day, the day itself (at most one crossing per threshold a day)."""
    if period == BudgetPeriod.ROLLING:
        return day
    return period_days(period, rolling_days, day)[0]


def period_bounds(
    period: str, rolling_days: int | None, zone: str, day: date
) -> tuple[datetime, datetime]:
    """The period holding `day` as UTC instants [start, end) of local midnights, so a DST
    change makes a day 23 or 25 hours long, as it is."""
    first, last = period_days(period, rolling_days, day)
    tz = ZoneInfo(zone)
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    # In UTC: arithmetic between two times of one zone ignores a DST change between them.
    return start.astimezone(UTC), end.astimezone(UTC)
