from django.urls import path

from apps.budgets import views

app_name = "budgets"
urlpatterns = [
    path("", views.budget_list, name="list"),
    path("halted/", views.halted_agents, name="halted"),
    path("new/", views.budget_edit, name="new"),
    path("<slug:slug>/edit/", views.budget_edit, name="edit"),
    path("<slug:slug>/", views.budget_detail, name="detail"),
]
