from django.urls import path

from . import views

app_name = "preferences"
urlpatterns = [
    path("tasks/<slug:slug>/pairs/", views.pairs, name="pairs"),
    path("tasks/<slug:slug>/pairs/review/", views.pairs_review, name="pairs_review"),
    path("tasks/<slug:slug>/compare/", views.compare, name="compare"),
    path("tasks/<slug:slug>/compare/judge/", views.judge, name="judge"),
    path("tasks/<slug:slug>/compare/triage/", views.triage, name="triage"),
    path("tasks/<slug:slug>/compare/triage/decide/", views.triage_decide, name="triage_decide"),
]
