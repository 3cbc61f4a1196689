from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import include, path

from annotate import views as annotate_views
from api.endpoints import api


def healthz(request) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("", annotate_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("annotate.urls")),
    path("", include("annotate.urls_import")),
    path("", include("exports.urls")),
    path("", include("reviews.urls")),
    path("", include("models_loop.urls")),
    path("api/", api.urls),  # after exports.urls, whose /api/tasks/<slug>/exports/<version>/<file> stay as they were
    path("", include("preferences.urls")),
]
