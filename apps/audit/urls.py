from django.urls import path

from apps.audit import views

app_name = "audit"
urlpatterns = [
    path("events/", views.event_list, name="events"),
    path("events/<uuid:event_id>/", views.event_detail, name="event"),
    path("ledger/", views.ledger, name="ledger"),
    path("ledger/verify/", views.ledger_verify_now, name="ledger-verify"),
]
