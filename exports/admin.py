from django.contrib import admin, messages

from . import services
from .models import ApiToken, Export


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ["task", "version", "format", "state", "deletion", "created_at"]
    list_filter = ["state", "format"]
    readonly_fields = [f.name for f in Export._meta.fields]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff see tokens and revoke them through the service (so each revocation is in the audit log); nothing here
    makes, deletes or un-revokes one: a token is shown once to the user who made it, and revocation is final."""

    list_display = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["user", "name", "prefix", "digest", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["user__username", "name", "prefix"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deleting an active token would revoke it with no audit event

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset) -> None:
        revoked = sum(
            services.token_revoke(token=token, actor=request.user) for token in queryset.select_related("user")
        )
        already = queryset.count() - revoked
        self.message_user(
            request,
            f"Revoked {revoked} token{'s' if revoked != 1 else ''}"
            + (f"; {already} {'was' if already == 1 else 'were'} revoked already." if already else "."),
            messages.SUCCESS,
        )
