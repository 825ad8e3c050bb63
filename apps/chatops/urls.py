from django.urls import path

from apps.chatops import views

app_name = "chatops"
urlpatterns = [path("slack/interactions", views.slack_interactions, name="slack-interactions")]
