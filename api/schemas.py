"""The shapes the JSON API reads and writes (pydantic, through django-ninja), which its OpenAPI schema describes."""

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field


class Problem(Schema):
    """What is wrong and where: `field` names the input (a JSON key, a form field, "line 12"), `message` says why."""

    field: str = ""
    message: str


class ErrorOut(Schema):
    detail: str
    problems: list[Problem] = []


class TaskOut(Schema):
    slug: str
    name: str
    output_format: str
    roles: list[str] = Field(description="The token's user's roles on the task (lead, reviewer, annotator).")
    exports_url: str


class FileOut(Schema):
    name: str
    size: int
    sha256: str
    url: str = Field(description="GET it with the same token.")


class ExportOut(Schema):
    version: int
    format: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    percent: int = Field(description="Progress, 0–100.")
    validation_ratio: float
    test_ratio: float
    kinds: list[str]
    counts: dict
    files: list[FileOut]
    error: str
    deleted: bool
    created_by: str | None
    created_at: datetime
    finished_at: datetime | None
    url: str


class ExportIn(Schema):
    """Start the next export version; ratios default to the task's settings, kinds to all."""

    model_config = ConfigDict(extra="forbid")

    format: str = Field(description="An export format, e.g. messages, openai-chat, sharegpt.")
    validation_ratio: float | None = Field(None, ge=0, lt=1)
    test_ratio: float | None = Field(None, ge=0, lt=1)
    kinds: list[str] | None = Field(None, max_length=10)


class ImportOut(Schema):
    id: int
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    percent: int
    notice: str
    filename: str
    size: int
    status_on_import: str
    counts: dict
    error: str
    created_by: str | None
    created_at: datetime
    finished_at: datetime | None
    url: str
