from django.urls import path

from apps.fleet import views
from apps.slo.views import agent_slo_scorecard

app_name = "fleet"
urlpatterns = [
    path("agents/", views.agent_list, name="agents"),
    path("agents/<slug:slug>/", views.agent_detail, name="agent"),
    path("agents/<slug:slug>/slos/", agent_slo_scorecard, name="agent-slos"),
    path("agents/<slug:slug>/callback/", views.agent_callback, name="agent-callback"),
    path(
        "agents/<slug:slug>/tokens/<int:token_id>/revoke/",
        views.agent_token_revoke_view,
        name="token-revoke",
    ),
]
