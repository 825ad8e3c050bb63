from django.urls import path

from apps.costs import views

app_name = "costs"
urlpatterns = [
    path("prices/", views.prices, name="prices"),
    path("explorer/", views.explorer, name="explorer"),
    path("driver-rates/", views.driver_rate_add, name="driver-rate-add"),
]
