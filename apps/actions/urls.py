from django.urls import path

from apps.actions import views

app_name = "actions"
urlpatterns = [path("", views.action_list, name="list")]
