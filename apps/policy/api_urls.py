from django.urls import path

from apps.policy import api

urlpatterns = [
    path("policies", api.PolicyListCreateView.as_view(), name="policies"),
    path("policies/active", api.PolicyActiveView.as_view(), name="policy-active"),
    path("policies/shadow", api.PolicyShadowView.as_view(), name="policy-shadow"),
    path("policies/<int:number>", api.PolicyDetailView.as_view(), name="policy"),
    path(
        "policies/<int:number>/activate",
        api.PolicyActivateView.as_view(),
        name="policy-activate",
    ),
]
