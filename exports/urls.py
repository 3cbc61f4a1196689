from django.urls import path, register_converter

from . import views


class VersionConverter:
    """`v3` in a URL is version 3."""

    regex = r"v[0-9]{1,9}"

    def to_python(self, value: str) -> int:
        return int(value[1:])

    def to_url(self, value: int) -> str:
        return f"v{value}"


register_converter(VersionConverter, "version")

app_name = "exports"
urlpatterns = [
    path("tasks/<slug:slug>/exports/", views.export_list, name="list"),
    path("tasks/<slug:slug>/exports/new/", views.export_create, name="create"),
    path("tasks/<slug:slug>/exports/tokenizer/", views.tokenizer_upload, name="tokenizer"),
    path("tasks/<slug:slug>/exports/tokenizer/remove/", views.tokenizer_remove, name="tokenizer_remove"),
    path("tasks/<slug:slug>/exports/<version:version>/", views.export_detail, name="detail"),
    path("tasks/<slug:slug>/exports/<version:version>/status/", views.export_status, name="status"),
    path("tasks/<slug:slug>/exports/<version:version>/cancel/", views.export_cancel, name="cancel"),
    path("tasks/<slug:slug>/exports/<version:version>/delete/", views.export_delete, name="delete"),
    path("tasks/<slug:slug>/exports/<version:version>/files/<str:name>", views.export_download, name="download"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("api/tasks/<slug:slug>/exports/latest/<str:name>", views.api_download_latest, name="api_latest"),
    path("api/tasks/<slug:slug>/exports/<version:version>/<str:name>", views.api_download, name="api_download"),
]
