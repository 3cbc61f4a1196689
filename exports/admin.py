from django.contrib import admin

from .models import ApiToken, Export


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ["task", "version", "format", "state", "deletion", "created_at"]
    list_filter = ["state", "format"]
    readonly_fields = [f.name for f in Export._meta.fields]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["user", "name", "prefix", "digest", "created_at", "last_used_at"]
    search_fields = ["user__username", "name", "prefix"]
