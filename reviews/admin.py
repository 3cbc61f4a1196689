from django.contrib import admin

from .models import Verdict


@admin.register(Verdict)
class VerdictAdmin(admin.ModelAdmin):
    list_display = ["example", "decision", "reviewer", "created_at"]
    list_filter = ["decision"]
    raw_id_fields = ["example", "revision", "reviewer"]
    show_full_result_count = False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # immutable

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
