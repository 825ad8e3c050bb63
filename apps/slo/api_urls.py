from django.urls import path

from apps.slo import api

urlpatterns = [
    path("slos", api.SloListCreateView.as_view(), name="slos"),
    # Before <slug>: "openslo" is a reserved slug for this reason.
    path("slos/openslo", api.SloOpensloView.as_view(), name="slos-openslo"),
    path("slos/<str:slug>", api.SloDetailView.as_view(), name="slo"),
]
