from django.urls import path

from . import views, views_accounts, views_overrides, views_quality, views_tools, views_work

app_name = "annotate"
urlpatterns = [
    path("account/password/", views_accounts.password_change, name="password_change"),
    path("account/flagged/", views.flagged_badge, name="flagged_badge"),
    path("account/set-password/<uidb64>/<token>/", views_accounts.set_password, name="set_password"),
    path("tasks/new/", views.task_create, name="task_create"),
    path("tasks/<slug:slug>/", views.task_detail, name="task_detail"),
    path("tasks/<slug:slug>/settings/", views.task_edit, name="task_edit"),
    path("tasks/<slug:slug>/template/", views.template_edit, name="template_edit"),
    path("tasks/<slug:slug>/tools/", views_tools.tools_edit, name="tools_edit"),
    path("tasks/<slug:slug>/template/preview/", views.template_preview, name="template_preview"),
    path("tasks/<slug:slug>/template/move/", views.template_move, name="template_move"),
    path("tasks/<slug:slug>/template/move/<int:move_id>/", views.template_move_status, name="template_move_status"),
    path("tasks/<slug:slug>/members/", views.members, name="members"),
    path("tasks/<slug:slug>/audit/", views.audit, name="audit"),
    path("tasks/<slug:slug>/annotate/", views_work.work, name="work"),
    path("tasks/<slug:slug>/dashboard/", views_quality.dashboard, name="dashboard"),
    path("tasks/<slug:slug>/dashboard/<slug:name>.csv", views_quality.dashboard_csv, name="dashboard_csv"),
    path("tasks/<slug:slug>/scans/", views_quality.scan_start, name="scan_start"),
    path("tasks/<slug:slug>/scans/<int:pk>/", views_quality.scan_status, name="scan_status"),
    path("tasks/<slug:slug>/examples/", views_quality.examples, name="examples"),
    path("tasks/<slug:slug>/mine/", views_work.my_work, name="my_work"),
    path("tasks/<slug:slug>/examples/new/", views_work.write_new, name="write_new"),
    path("tasks/<slug:slug>/examples/<uuid:uuid>/edit/", views_work.edit, name="edit"),
    path("tasks/<slug:slug>/examples/<uuid:uuid>/save/", views_work.save, name="save"),
    path("tasks/<slug:slug>/examples/<uuid:uuid>/feedback/", views_work.feedback, name="feedback"),
    path("tasks/<slug:slug>/examples/<uuid:uuid>/submit/", views_work.submit, name="submit"),
    path("tasks/<slug:slug>/examples/<uuid:uuid>/skip/", views_work.skip, name="skip"),
    path("tasks/<slug:slug>/examples/<uuid:uuid>/not-a-problem/", views_overrides.overrule, name="overrule"),
    path(
        "tasks/<slug:slug>/examples/<uuid:uuid>/not-a-problem/<int:pk>/undo/",
        views_overrides.overrule_undo,
        name="overrule_undo",
    ),
]
