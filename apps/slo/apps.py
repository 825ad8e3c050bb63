from django.apps import AppConfig


class SloConfig(AppConfig):
    name = "apps.slo"
    label = "slo"
    verbose_name = "SLOs"

    def ready(self) -> None:
        from apps.audit.services.derived import derived_register
        from apps.slo.rollups import CONSUMER, slo_apply

        # After each sealed batch: incidents, SLI facts and per-minute rollups.
        derived_register(CONSUMER, slo_apply)
