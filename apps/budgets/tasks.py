from apps.core.tasks import opsdash_task


@opsdash_task("budgets.forecast_alerts", time_limit=300)
def budgets_forecast_alerts_task() -> int:
    """Hourly; notifies once per budget, period and epoch (a deduplicated notification)."""
    from apps.budgets.services import budgets_forecast_alert

    return budgets_forecast_alert()
