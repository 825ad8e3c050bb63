from django.urls import path

from apps.budgets import views

app_name = "budgets"
urlpatterns = [
    path("", views.budget_list, name="list"),
    path("halted/", views.halted_agents, name="halted"),
    path("<slug:slug>/", views.budget_detail, name="detail"),
]
