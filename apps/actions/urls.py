from django.urls import path

from apps.actions import views

app_name = "actions"
urlpatterns = [
    path("", views.action_list, name="list"),
    path("queue/", views.action_queue, name="queue"),
    path("<str:action_id>/", views.action_detail, name="detail"),
    path("<str:action_id>/cost/", views.action_cost, name="cost"),
    path("<str:action_id>/decide/", views.action_decide_view, name="decide"),
    path("<str:action_id>/verdict/", views.action_verdict_view, name="verdict"),
]
