from django.contrib import admin

from .models import AuditEvent, Example, Membership, PromptTemplate, Revision, Task, Transition


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "output_format", "approvals_required", "created_at"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    list_display = ["task", "version", "preset", "created_at"]
    list_filter = ["task"]


@admin.register(Example)
class ExampleAdmin(admin.ModelAdmin):
    list_display = ["uuid", "task", "status", "kind", "source", "updated_at"]
    list_filter = ["status", "kind", "source", "task"]
    search_fields = ["uuid", "external_id"]
    raw_id_fields = ["template", "author", "claimed_by"]
    show_full_result_count = False  # a million rows: no COUNT(*) on every page


@admin.register(Revision)
class RevisionAdmin(admin.ModelAdmin):
    list_display = ["example", "reason", "author", "created_at"]
    raw_id_fields = ["example", "author"]
    show_full_result_count = False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revisions are never deleted


@admin.register(Transition)
class TransitionAdmin(admin.ModelAdmin):
    list_display = ["example", "from_status", "to_status", "actor", "created_at"]
    raw_id_fields = ["example", "actor"]
    show_full_result_count = False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["task", "user", "role"]
    list_filter = ["role", "task"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is written by the services, never edited (staff see account events here too)."""

    list_display = ["created_at", "task", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["target", "actor__username"]
    raw_id_fields = ["task", "actor"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
