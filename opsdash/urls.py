from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.actions.api import ActionDecideView, ActionDetailView, ActionProposeView
from apps.audit.api import EventListCreateView, LimitsView
from apps.budgets.api import GateView
from apps.budgets.api_halt import AgentHaltView, AgentResumeView
from apps.core.views import healthz, home
from apps.slo.metrics import metrics_view

api_v1: list[URLPattern | URLResolver] = [
    path("events", EventListCreateView.as_view(), name="events"),
    path("limits", LimitsView.as_view(), name="limits"),
    path("actions", ActionProposeView.as_view(), name="actions"),
    path("actions/<str:action_id>", ActionDetailView.as_view(), name="action"),
    re_path(
        r"^actions/(?P<action_id>[^/]+)/(?P<verdict>approve|reject)$",
        ActionDecideView.as_view(),
        name="action-decide",
    ),
    path("gate", GateView.as_view(), name="gate"),
    path("agents/<slug:slug>/halt", AgentHaltView.as_view(), name="agent-halt"),
    path("agents/<slug:slug>/resume", AgentResumeView.as_view(), name="agent-resume"),
    path("", include("apps.budgets.api_urls")),
    path("", include("apps.policy.api_urls")),
    path("", include("apps.slo.api_urls")),
]

urlpatterns = [
    path("", home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("apps.accounts.urls")),
    path("fleet/", include("apps.fleet.urls")),
    path("audit/", include("apps.audit.urls")),
    path("actions/", include("apps.actions.urls")),
    path("assist/", include("apps.assist.urls")),
    path("policy/", include("apps.policy.urls")),
    path("slos/", include("apps.slo.urls")),
    path("costs/", include("apps.costs.urls")),
    path("budgets/", include("apps.budgets.urls")),
    path("notifications/", include("apps.notifications.urls")),
    path("billing/", include("apps.billing.urls")),
    path("api/v1/", include((api_v1, "api"))),
    path("integrations/", include("apps.chatops.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
]
