from django.urls import path

from apps.billing import views

app_name = "billing"
urlpatterns = [
    path("imports/", views.import_list, name="imports"),
    path("imports/<int:pk>/", views.import_detail, name="import"),
    path("rules/", views.rule_list, name="rules"),
    path("rules/<int:pk>/", views.rule_edit, name="rule"),
    path("rules/<int:pk>/<str:what>", views.rule_action, name="rule-action"),
    path("rules/recompute", views.recompute, name="recompute"),
    path("rules/runs", views.run_rows, name="runs"),
    path("chargeback/", views.chargeback_page, name="chargeback"),
    path("chargeback.csv", views.chargeback_csv, name="chargeback-csv"),
]
