from django.urls import path

from . import views, views_discard, views_triage

app_name = "reviews"
urlpatterns = [
    path("tasks/<slug:slug>/review/", views.queue, name="queue"),
    path("tasks/<slug:slug>/review/next/", views.next_pair, name="next"),
    path("tasks/<slug:slug>/review/previous/", views.previous, name="previous"),
    path("tasks/<slug:slug>/review/<uuid:uuid>/", views.review, name="review"),
    path("tasks/<slug:slug>/review/<uuid:uuid>/decide/", views.decide, name="decide"),
    path("tasks/<slug:slug>/triage/", views_triage.triage, name="triage"),
    path("tasks/<slug:slug>/triage/act/", views_triage.triage_act, name="triage_act"),
    path("tasks/<slug:slug>/examples/<uuid:uuid>/", views.example_detail, name="example"),
    path("tasks/<slug:slug>/examples/<uuid:uuid>/discard/", views_discard.discard, name="discard"),
]
