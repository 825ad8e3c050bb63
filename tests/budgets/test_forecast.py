"""Forecast: the period's end at the recent burn, and one alert when the cap is in reach."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from apps.budgets.models import BudgetDay
from apps.budgets.selectors import budget_chart, budget_forecast, budget_standing
from apps.budgets.services import budget_create, budgets_forecast_alert
from apps.notifications.models import Notification

pytestmark = pytest.mark.django_db

NOON_NOV_11 = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)


@pytest.fixture
def monthly(db, make_person):
    make_person("fiona", "finops")
    budget = budget_create(
        slug="fleet-month",
        name="Fleet monthly LLM",
        scope="global",
        measure="llm_usd",
        period="monthly",
        cap=Decimal("100"),
    )
    for day in range(5, 12):  # 5 USD a day from Nov 5 to Nov 11 (today, half gone)
        BudgetDay.objects.create(budget=budget, day=date(2026, 11, day), amount=Decimal(5))
    return budget


def test_the_forecast_extrapolates_the_last_week(monthly):
    standing = budget_standing(monthly, NOON_NOV_11)
    assert standing.spent == Decimal(35)
    forecast = budget_forecast(standing, NOON_NOV_11)
    # 35 USD over the 6.5 days since Nov 5: 5.38 a day; 19.5 days left: 35 + 105 = 140.
    assert forecast.per_day.quantize(Decimal("0.0001")) == Decimal("5.3846")
    assert forecast.projected.quantize(Decimal("0.01")) == Decimal("140.00")
    # The remaining 65 USD take 12.07 days: on Nov 23.
    assert forecast.breach_on == date(2026, 11, 23)
    chart = budget_chart(standing, forecast, NOON_NOV_11)
    counted, projected = chart["data"][0], chart["data"][1]
    # Each past day's total at its end, today's at this moment (local time, here UTC).
    assert (counted["x"][0], counted["y"][0]) == ("2026-11-01 00:00", 0.0)
    assert (counted["x"][5], counted["y"][5]) == ("2026-11-06 00:00", 5.0)
    assert (counted["x"][-1], counted["y"][-1]) == ("2026-11-11 12:00:00", 35.0)
    assert projected["x"] == ["2026-11-11 12:00:00", "2026-12-01 00:00"]


def test_finops_hear_of_a_projected_breach_once(monthly):
    assert budgets_forecast_alert(NOON_NOV_11) == 1
    assert budgets_forecast_alert(NOON_NOV_11) == 1
    alerts = Notification.objects.filter(kind="budget_forecast")
    assert alerts.count() == 1
    assert (
        alerts.get().title == "Budget Fleet monthly LLM is projected to reach its cap on 2026-11-23"
    )


def test_a_slow_burn_projects_no_breach(monthly):
    BudgetDay.objects.filter(budget=monthly).update(amount=Decimal("0.5"))
    forecast = budget_forecast(budget_standing(monthly, NOON_NOV_11), NOON_NOV_11)
    assert forecast.breach_on is None
    assert budgets_forecast_alert(NOON_NOV_11) == 0
