from apps.core.tasks import opsdash_task


@opsdash_task("budgets.forecast_alerts", time_limit=300)
def budgets_forecast_alerts_task() -> int:
    """Hourly; notifies once per budget, period and epoch (a deduplicated notification)."""
    from apps.budgets.services import budgets_forecast_alert

    return budgets_forecast_alert()


@opsdash_task("budgets.gate_reservations_expire", time_limit=120)
def gate_reservations_expire_task() -> int:
    """Every minute: what expired gate reservations held goes back to their budgets."""
    from apps.budgets.gate import gate_reservations_expire

    return gate_reservations_expire()
