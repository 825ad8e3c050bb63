from django.urls import path

from apps.slo import views

app_name = "slo"
urlpatterns = [
    path("", views.slo_list, name="list"),
    path("<slug:slug>/", views.slo_detail, name="detail"),
]
