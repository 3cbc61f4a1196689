"""The JSON API for pipelines (django-ninja): list tasks, start imports and exports, follow their jobs, list export
versions with their files and checksums. Described by the OpenAPI schema at /api/schema, rendered at /api/docs.

Every endpoint needs a bearer token (auth.py) and checks its user's role on the task as the pages do: a task the user
is not a member of does not exist (404); reading exports needs lead or reviewer, starting an import or an export and
reading an import needs lead (403). Bad input is a 400 naming the field, and changes nothing.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import NinjaAPI, Status, Swagger
from ninja.errors import AuthenticationError
from ninja.errors import ValidationError as NinjaValidationError

from annotate.access import task_for
from annotate.audit import Action, audit_record
from annotate.models import ImportJob, Membership, Role, Task
from exports import services as export_services
from exports.models import Export
from exports.tokens import token_tasks
from pairsmith.ratelimit import rate_limit_hit

from . import imports
from .auth import RateLimited, TokenAuth
from .schemas import ErrorOut, ExportIn, ExportOut, ImportOut, TaskOut

READERS = (Role.LEAD, Role.REVIEWER)
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 429: ErrorOut}

api = NinjaAPI(
    title="Pairsmith API",
    version="1",
    description=(
        "For pipelines: start imports and exports, follow their jobs, fetch export files. Authenticate with a "
        "personal token made on the API tokens page: `Authorization: Bearer psk_…`. The token acts for its user, "
        "on the tasks where that user is lead or reviewer; imports and exports need the lead role."
    ),
    auth=TokenAuth(),
    urls_namespace="api",
    openapi_url="/schema",
    docs_url="/docs",
    docs=Swagger(settings={"persistAuthorization": False}),  # the page and the schema hold no data: public
)


# --- errors: one shape, {"detail", "problems": [{"field", "message"}]} ------------------------------------------


def _error(request: HttpRequest, status: int, detail: str, problems=(), **headers):
    body = {"detail": detail, "problems": [{"field": f, "message": m} for f, m in problems]}
    response = api.create_response(request, body, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    detail = "A valid API token is required: Authorization: Bearer <token> (made on the API tokens page)."
    return _error(request, 401, detail, **{"WWW-Authenticate": "Bearer"})


@api.exception_handler(RateLimited)
def _rate_limited(request, exc: RateLimited):
    return _error(request, 429, exc.refusal.message, **{"Retry-After": str(exc.refusal.retry_after)})


@api.exception_handler(NinjaValidationError)
def _invalid(request, exc: NinjaValidationError):
    problems = []
    for error in exc.errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "payload", "query"))
        problems.append((where, error.get("msg", "invalid")))
    return _error(request, 400, "The request is not valid; nothing was changed.", problems)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return _error(request, 404, str(exc) or "Not found.")


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return _error(request, 403, str(exc) or "The token's user may not do this.")


@api.exception_handler(imports.Refused)
def _refused(request, exc: imports.Refused):
    return _error(request, exc.status, exc.detail, exc.problems)


def _validation(request, exc: ValidationError):
    if hasattr(exc, "error_dict"):
        problems = [(field if field != "__all__" else "", m) for field, ms in exc.message_dict.items() for m in ms]
    else:
        problems = [("", m) for m in exc.messages]
    return _error(request, 400, "The request cannot be carried out; nothing was changed.", problems)


# --- shapes ----------------------------------------------------------------------------------------------------


def _export_out(export: Export) -> dict:
    slug, version = export.task.slug, export.version
    files = []
    if export.state == "succeeded" and not export.deleted_at:
        for name, info in sorted((export.files or {}).items()):
            url = reverse("exports:api_download", args=[slug, version, name])
            files.append({"name": name, "size": info.get("size", 0), "sha256": info.get("sha256", ""), "url": url})
    return {
        "version": version,
        "format": export.format,
        "state": export.state,
        "percent": export.percent,
        "validation_ratio": export.validation_ratio,
        "test_ratio": export.test_ratio,
        "kinds": (export.filters or {}).get("kinds", []),
        "counts": export.counts or {},
        "files": files,
        "error": export.error,
        "deleted": export.deleted_at is not None,
        "created_by": export.created_by.username if export.created_by else None,
        "created_at": export.created_at,
        "finished_at": export.finished_at,
        "url": reverse("api:export", args=[slug, version]),
    }


def _import_out(job: ImportJob) -> dict:
    return {
        "id": job.pk,
        "state": job.state,
        "percent": job.percent,
        "notice": job.notice,
        "filename": job.filename,
        "size": job.size,
        "status_on_import": job.status_on_import,
        "counts": job.counts or {},
        "error": job.error,
        "created_by": job.created_by.username if job.created_by else None,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "url": reverse("api:import", args=[job.task.slug, job.pk]),
    }


def _job_limit(request) -> None:
    """Imports and exports count against the user's RATE_LIMIT_JOBS, as on the pages (all their tokens together)."""
    refusal = rate_limit_hit(user_id=request.user.pk, scope="job")
    if refusal is not None:
        raise RateLimited(refusal)


def _audit(request, task: Task, what: str, target: str) -> None:
    token = request.auth
    detail = {"what": what, "token": token.prefix, "token_name": token.name}
    audit_record(task=task, actor=request.user, action=Action.API_REQUEST, target=target, detail=detail)


# --- endpoints -------------------------------------------------------------------------------------------------


@api.get("/tasks", response={200: list[TaskOut], **ERRORS}, summary="The tasks this token reaches")
def tasks(request):
    found = list(token_tasks(user=request.user).order_by("name")[:500])
    held: dict[int, set[str]] = {}
    if request.user.is_staff:
        held = {task.pk: set(Role.values) for task in found}
    else:
        memberships = Membership.objects.filter(user=request.user, task__in=found).values_list("task_id", "role")
        for task_id, role in memberships:
            held.setdefault(task_id, set()).add(role)
    return [
        {
            "slug": task.slug,
            "name": task.name,
            "output_format": task.output_format,
            "roles": sorted(held.get(task.pk, ())),
            "exports_url": reverse("api:exports", args=[task.slug]),
        }
        for task in found
    ]


@api.get(
    "/tasks/{slug}/exports",
    response={200: list[ExportOut], **ERRORS},
    url_name="exports",
    summary="A task's export versions, newest first, with their files and checksums",
)
def exports(request, slug: str):
    task, _ = task_for(request.user, slug, *READERS)
    rows = task.exports.select_related("task", "created_by").order_by("-version")[:200]
    return [_export_out(export) for export in rows]


@api.post("/tasks/{slug}/exports", response={202: ExportOut, **ERRORS}, summary="Start the next export version")
def export_start(request, slug: str, payload: ExportIn):
    task, _ = task_for(request.user, slug, Role.LEAD)
    _job_limit(request)
    try:
        with transaction.atomic():
            export = export_services.export_request(
                task=task,
                export_format=payload.format,
                validation_ratio=payload.validation_ratio,
                test_ratio=payload.test_ratio,
                kinds=payload.kinds,
                user=request.user,
            )
            _audit(request, task, "export started", f"v{export.version}")
    except ValidationError as exc:
        return _validation(request, _renamed(exc))
    export = Export.objects.select_related("task", "created_by").get(pk=export.pk)
    return Status(202, _export_out(export))


def _renamed(exc: ValidationError) -> ValidationError:
    """The service names the format `export_format` (its form field); the API calls it `format`."""
    if hasattr(exc, "error_dict") and "export_format" in exc.error_dict:
        exc.error_dict["format"] = exc.error_dict.pop("export_format")
    return exc


@api.get(
    "/tasks/{slug}/exports/v{version}",
    response={200: ExportOut, **ERRORS},
    url_name="export",
    summary="One export version: its state, progress, counts and files",
)
def export_detail(request, slug: str, version: int):
    task, _ = task_for(request.user, slug, *READERS)
    export = get_object_or_404(Export.objects.select_related("task", "created_by"), task=task, version=version)
    return _export_out(export)


IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "JSONL, a JSON array or CSV."},
                        "file_format": {"type": "string", "enum": list(imports.FILE_FORMATS)},
                        "status": {"type": "string", "enum": ["new", "submitted", "approved"], "default": "new"},
                        "mapping": {
                            "type": "string",
                            "description": 'JSON: {"keys": {"question": "instruction"}, "paths": {"completion": '
                            '"answer.text"}}; keys not named map by name.',
                        },
                        "allow_unmapped": {"type": "string", "description": "Comma-separated keys to drop."},
                        "keep_unmapped": {"type": "string", "description": "Comma-separated keys kept as metadata."},
                    },
                }
            }
        },
    }
}


@api.post(
    "/tasks/{slug}/imports",
    response={201: ImportOut, 202: ImportOut, **ERRORS},
    openapi_extra=IMPORT_BODY,
    summary="Upload a file and import it (small files at once, all or nothing; large ones by a worker)",
)
def import_start(request, slug: str):
    task, _ = task_for(request.user, slug, Role.LEAD)
    _job_limit(request)  # before the body is read: a refused upload is not stored
    job = imports.import_from_request(request, task=task)
    _audit(request, task, "import started", f"import {job.pk}")
    job = ImportJob.objects.select_related("task", "created_by").get(pk=job.pk)
    return Status(201 if job.state == "succeeded" else 202, _import_out(job))


@api.get(
    "/tasks/{slug}/imports/{job_id}",
    response={200: ImportOut, **ERRORS},
    url_name="import",
    summary="An import job: its state, progress, counts, or what stopped it",
)
def import_detail(request, slug: str, job_id: int):
    task, _ = task_for(request.user, slug, Role.LEAD)
    job = get_object_or_404(ImportJob.objects.select_related("task", "created_by"), task=task, pk=job_id)
    return _import_out(job)
