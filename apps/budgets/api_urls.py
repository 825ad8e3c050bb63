from django.urls import path

from apps.budgets.api_budgets import BudgetDetailView, BudgetListCreateView

urlpatterns = [
    path("budgets", BudgetListCreateView.as_view(), name="budgets"),
    path("budgets/<slug:slug>", BudgetDetailView.as_view(), name="budget"),
]
