from django.urls import path

from apps.billing import api

urlpatterns = [
    path("allocation-rules", api.RuleListView.as_view(), name="allocation-rules"),
    path("allocation-rules/<int:pk>", api.RuleDetailView.as_view(), name="allocation-rule"),
]
