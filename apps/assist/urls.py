from django.urls import path

from apps.assist import views

app_name = "assist"
urlpatterns = [
    path(
        "actions/<str:action_id>/explain/",
        views.action_explain_view,
        name="action-explain",
    ),
]
