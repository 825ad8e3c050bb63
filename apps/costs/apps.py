from django.apps import AppConfig


class CostsConfig(AppConfig):
    name = "apps.costs"
    label = "costs"
    verbose_name = "Cost and energy"

    def ready(self) -> None:
        from apps.audit.services.derived import derived_register
        from apps.costs.drivers import TOOL_CALLS_CONSUMER, tool_call_counts_apply

        derived_register(TOOL_CALLS_CONSUMER, tool_call_counts_apply)
