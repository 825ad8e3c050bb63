from django.urls import path

from apps.costs import views
from apps.costs.billed import views as billed_views

app_name = "costs"
urlpatterns = [
    path("prices/", views.prices, name="prices"),
    path("explorer/", views.explorer, name="explorer"),
    path("driver-rates/", views.driver_rate_add, name="driver-rate-add"),
    path("reconciliation/", billed_views.reconciliation_page, name="reconciliation"),
    path("reconciliation/pull/", billed_views.reconciliation_pull, name="reconciliation-pull"),
    path("reconciliation/api-keys/", billed_views.api_key_map, name="api-key-map"),
    path("energy/", views.energy, name="energy"),
]
