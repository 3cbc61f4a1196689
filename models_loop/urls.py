from django.urls import path

from . import views

app_name = "models_loop"
urlpatterns = [
    path("tasks/<slug:slug>/model/", views.model_settings, name="settings"),
    path("tasks/<slug:slug>/model/preview/", views.model_preview, name="preview"),
    path("tasks/<slug:slug>/model/drafts/", views.draft_start, name="draft_start"),
    path("tasks/<slug:slug>/model/drafts/status/", views.draft_status, name="draft_status"),
]
