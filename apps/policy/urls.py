from django.urls import path

from apps.policy import views

app_name = "policy"
urlpatterns = [
    path("", views.versions, name="versions"),
    path("edit/", views.editor, name="editor"),
    path("validate/", views.validate, name="validate"),
    path("dry-run/", views.dry_run, name="dry-run"),
    path("shadow/", views.shadow, name="shadow"),
    path("<int:number>/", views.version_detail, name="version"),
    path("<int:number>/diff/", views.version_diff, name="diff"),
    path("<int:number>/activate/", views.version_activate, name="activate"),
]
