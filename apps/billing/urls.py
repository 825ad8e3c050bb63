from django.urls import path

from apps.billing import views

app_name = "billing"
urlpatterns = [
    path("imports/", views.import_list, name="imports"),
    path("imports/<int:pk>/", views.import_detail, name="import"),
]
