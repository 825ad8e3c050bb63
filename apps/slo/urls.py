from django.urls import path

from apps.slo import edit_views, views

app_name = "slo"
urlpatterns = [
    path("", views.slo_list, name="list"),
    path("new/", edit_views.slo_new, name="new"),
    path("<slug:slug>/", views.slo_detail, name="detail"),
    path("<slug:slug>/edit/", edit_views.slo_edit, name="edit"),
    path("<slug:slug>/delete/", edit_views.slo_delete_view, name="delete"),
]
