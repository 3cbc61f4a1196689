from django.contrib import admin

from .models import Export


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ["task", "version", "format", "state", "created_at"]
    list_filter = ["state", "format"]
    readonly_fields = [f.name for f in Export._meta.fields]
