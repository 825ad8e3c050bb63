from django.urls import path

from apps.costs import views

app_name = "costs"
urlpatterns = [
    path("prices/", views.prices, name="prices"),
    path("reconciliation/", views.reconciliation_page, name="reconciliation"),
    path("reconciliation/pull/", views.reconciliation_pull, name="reconciliation-pull"),
    path("reconciliation/api-keys/", views.api_key_map, name="api-key-map"),
]
