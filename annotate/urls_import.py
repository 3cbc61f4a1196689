from django.urls import path

from . import views_import

app_name = "imports"
urlpatterns = [
    path("tasks/<slug:slug>/import/", views_import.upload, name="upload"),
    path("tasks/<slug:slug>/import/<uuid:token>/", views_import.mapping, name="mapping"),
    path("tasks/<slug:slug>/import/<uuid:token>/preview/", views_import.preview, name="preview"),
    path("tasks/<slug:slug>/imports/<int:pk>/", views_import.job, name="job"),
    path("tasks/<slug:slug>/imports/<int:pk>/progress/", views_import.progress, name="progress"),
    path("tasks/<slug:slug>/imports/<int:pk>/cancel/", views_import.cancel, name="cancel"),
]
