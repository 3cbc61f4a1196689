from django.urls import path

from . import evaluation_views, views

app_name = "models_loop"
urlpatterns = [
    path("tasks/<slug:slug>/model/", views.model_settings, name="settings"),
    path("tasks/<slug:slug>/model/preview/", views.model_preview, name="preview"),
    path("tasks/<slug:slug>/model/runs/<str:kind>/", views.run_start, name="run_start"),
    path("tasks/<slug:slug>/model/runs/<str:kind>/status/", views.run_status, name="run_status"),
    path("tasks/<slug:slug>/model/runs/<str:kind>/cancel/", views.run_cancel, name="run_cancel"),
    path("tasks/<slug:slug>/evaluations/", evaluation_views.evaluations, name="evaluations"),
    path("tasks/<slug:slug>/evaluations/new/", evaluation_views.evaluation_start, name="evaluation_start"),
    path("tasks/<slug:slug>/evaluations/<int:pk>/", evaluation_views.evaluation_detail, name="evaluation"),
    path("tasks/<slug:slug>/evaluations/<int:pk>/judge/", evaluation_views.evaluation_judge, name="evaluation_judge"),
    path(
        "tasks/<slug:slug>/evaluations/<int:pk>/cancel/", evaluation_views.evaluation_cancel, name="evaluation_cancel"
    ),
    path(
        "tasks/<slug:slug>/evaluations/<int:pk>/items/<int:item>/new-example/",
        evaluation_views.item_new_example,
        name="evaluation_new_example",
    ),
]
