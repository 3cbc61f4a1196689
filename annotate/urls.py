from django.urls import path

from . import views

app_name = "annotate"
urlpatterns = [
    path("tasks/new/", views.task_create, name="task_create"),
    path("tasks/<slug:slug>/", views.task_detail, name="task_detail"),
    path("tasks/<slug:slug>/settings/", views.task_edit, name="task_edit"),
    path("tasks/<slug:slug>/template/", views.template_edit, name="template_edit"),
    path("tasks/<slug:slug>/template/preview/", views.template_preview, name="template_preview"),
    path("tasks/<slug:slug>/members/", views.members, name="members"),
]
