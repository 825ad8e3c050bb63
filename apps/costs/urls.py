from django.urls import path

from apps.costs import views

app_name = "costs"
urlpatterns = [
    path("prices/", views.prices, name="prices"),
    path("energy/", views.energy, name="energy"),
]
