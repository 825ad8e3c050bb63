"""SLO windows, burn-rate windows and multi-window multi-burn-rate alert factors.

The factor of an alert is the share of the period's error budget that its long window may
burn, times the period over the long window (Google SRE Workbook, ch. 5): for 30 days,
2 % in 1 h → 0.02 * 720 h / 1 h = 14.4; 5 % in 6 h → 6; 10 % in 1 d → 3; 10 % in 3 d → 1.
A 28-day SLO gives 13.44 / 5.6 / 2.8 / 0.933….
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

BURN_WINDOWS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
}


@dataclass(frozen=True)
class AlertRule:
    severity: str  # "page" | "ticket"
    long_window: str
    short_window: str
    budget_share: Decimal  # of the period's error budget the long window may burn


ALERT_RULES: tuple[AlertRule, ...] = (
    AlertRule("page", "1h", "5m", Decimal("0.02")),
    AlertRule("page", "6h", "30m", Decimal("0.05")),
    AlertRule("ticket", "1d", "2h", Decimal("0.10")),
    AlertRule("ticket", "3d", "6h", Decimal("0.10")),
)


def burn_factor(period: timedelta, rule: AlertRule) -> Decimal:
    """The burn rate above which both of the rule's windows must be for it to fire."""
    ratio = Decimal(period.total_seconds()) / Decimal(
        BURN_WINDOWS[rule.long_window].total_seconds()
    )
    return rule.budget_share * ratio


def calendar_month_bounds(now: datetime, time_zone: str) -> tuple[datetime, datetime]:
    """The calendar month containing `now` in `time_zone`, as aware datetimes."""
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end
