"""The forms of the import pages (views_import): the upload, streamed to disk by its own upload handler, and the
mapping of a file's keys and paths to the fields of an example, with the lead's choice for the keys not stored."""

import contextlib

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers, StopUpload

from . import importing
from .forms import NoColonMixin
from .importing.mapping import MAX_PATH_CHARS, Mapping, PathError, parse_path
from .importing.previews import Unstored
from .models import Example, ImportJob


class StoredUpload(UploadedFile):
    """An uploaded file already written under VAR_DIR/imports; `token` names it there."""

    def __init__(self, *, token: str, name: str, size: int, content_type: str | None) -> None:
        super().__init__(file=None, name=name, content_type=content_type, size=size)
        self.token = token


class ImportUploadHandler(FileUploadHandler):
    """Stream the `file` field straight to VAR_DIR/imports under a generated name, and stop over MAX_IMPORT_BYTES
    (so a huge upload neither fills a temporary folder first nor reaches the view)."""

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.token: str | None = None
        self.too_big = False
        self.kept = False
        self._handle = None

    def new_file(self, field_name, file_name, *args, **kwargs) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name != "file" or self.token is not None:
            return
        self.token = importing.upload_token()
        path = importing.upload_path(self.token)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "wb")  # noqa: SIM115 (closed in file_complete or discard)
        raise StopFutureHandlers()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self._handle is None:
            return None
        if start + len(raw_data) > settings.MAX_IMPORT_BYTES:
            self.too_big = True
            self.discard()
            raise StopUpload(connection_reset=False)
        self._handle.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> StoredUpload | None:
        if self._handle is None:
            return None
        self._handle.close()
        self._handle = None
        return StoredUpload(token=self.token, name=self.file_name, size=file_size, content_type=self.content_type)

    def upload_interrupted(self) -> None:
        self.discard()

    def discard(self) -> None:
        """Delete the stored file unless the view kept it (it went on to the mapping step)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self.token is not None and not self.kept:
            importing.upload_path(self.token).unlink(missing_ok=True)


FORMAT_CHOICES = [("", "Detect (from the name, else the first character)"), *ImportJob.FileFormat.choices]
STATUS_CHOICES = [(str(s), s.label) for s in importing.IMPORT_STATUSES]
TARGET_CHOICES = [("", "— no field —"), *importing.FIELDS.items()]


class UploadForm(NoColonMixin, forms.Form):
    """A file from the lead's computer, and nothing else: no import from URLs (a server that fetches what a user
    names can be turned against the network it sits in)."""

    file = forms.FileField(help_text="JSONL, a JSON array, or CSV with a header row; UTF-8.")
    file_format = forms.ChoiceField(choices=FORMAT_CHOICES, required=False, label="Format")

    def __init__(self, *args, too_big: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.too_big = too_big
        if too_big:  # the upload handler stopped reading the file: it is missing for that reason, say so
            self.fields["file"].required = False

    def clean(self) -> dict:
        data = super().clean()
        if self.too_big:
            limit = importing.human_size(settings.MAX_IMPORT_BYTES)
            raise ValidationError({"file": f"The file is over the import limit of {limit} (MAX_IMPORT_BYTES)."})
        return data


UNMAPPED_CHOICES = [
    ("", "Not yet: I will map them"),
    ("drop", "Drop them: they are not imported"),
    ("keep", "Keep them on each example as metadata"),
]


class MappingForm(NoColonMixin, forms.Form):
    """One choice per key of the file (its label is the key, escaped when shown), prefilled by name; a path per field
    into nested values; and, when some keys would not be stored, the lead's choice for them. In a CSV file every row
    has every column, so two columns for one field is a mistake; JSON records may differ in shape."""

    status = forms.ChoiceField(
        choices=STATUS_CHOICES,
        initial=Example.Status.NEW,
        label="Import as",
        help_text="New prompts go to annotators; submitted and approved examples need a completion.",
    )
    unmapped = forms.ChoiceField(choices=UNMAPPED_CHOICES, required=False, label="Keys not stored")

    def __init__(self, *args, keys: list[str], file_format: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.keys = keys
        self.file_format = file_format
        defaults = importing.default_mapping(keys)
        for i, key in enumerate(keys):
            self.fields[f"map_{i}"] = forms.ChoiceField(
                choices=TARGET_CHOICES, required=False, initial=defaults[key], label=key[:200]
            )
        for name, label in importing.FIELDS.items():
            self.fields[f"path_{name}"] = forms.CharField(
                required=False,
                max_length=MAX_PATH_CHARS,
                label=f"{label}, from the path",
                widget=forms.TextInput(attrs={"placeholder": "e.g. instances[0].output", "spellcheck": "false"}),
            )

    def key_fields(self) -> list:
        return [self[f"map_{i}"] for i in range(len(self.keys))]

    def clean(self) -> dict:
        data = super().clean()
        chosen: dict[str, list[str]] = {}
        for i, key in enumerate(self.keys):
            if data.get(f"map_{i}"):
                chosen.setdefault(data[f"map_{i}"], []).append(key)
        for target, keys in chosen.items():
            if len(keys) > 1 and self.file_format == ImportJob.FileFormat.CSV:
                self.add_error(None, f"Only one column can go to {importing.FIELDS[target]}: {', '.join(keys)}.")
        for name in importing.FIELDS:
            if text := data.get(f"path_{name}", "").strip():
                try:
                    parse_path(text)
                except PathError as exc:
                    self.add_error(f"path_{name}", str(exc))
                else:
                    chosen.setdefault(name, []).append(text)
        if "instruction" not in chosen and "messages" not in chosen:
            self.add_error(None, "Map a column (or a path) to the instruction, or one to chat messages.")
        return data

    def mapping(self, unstored: list[Unstored] | None = None) -> Mapping:
        """The keys and fields ("" leaves a key to no field) and the paths as chosen (even while the form is invalid,
        so that the preview shows what the lead chose; paths that cannot be read left out), else the defaults. With
        the keys `unstored` and the lead's confirmation of exactly those, they are dropped or kept."""
        if not self.is_bound:
            return Mapping(keys=importing.default_mapping(self.keys))
        chosen = {key: self.data.get(f"map_{i}", "") for i, key in enumerate(self.keys)}
        paths = {}
        for name in importing.FIELDS:
            text = str(self.data.get(f"path_{name}", "")).strip()
            with contextlib.suppress(PathError):
                if text and len(text) <= MAX_PATH_CHARS and parse_path(text):
                    paths[name] = text
        choice = self.unmapped_choice(unstored or [])
        labels = frozenset(u.key for u in unstored or [])
        return Mapping(
            keys={key: target if target in importing.FIELDS else "" for key, target in chosen.items()},
            paths=paths,
            drop=labels if choice == "drop" else frozenset(),
            keep=labels if choice == "keep" else frozenset(),
        )

    def unmapped_choice(self, unstored: list[Unstored]) -> str:
        """The lead's choice for the keys not stored ("drop", "keep"), when it was made for exactly the keys listed
        now (`unmapped_key`, sent back with the choice); else "" (a change of mapping that lists other keys asks
        again)."""
        if not self.is_bound or not unstored:
            return ""
        confirmed = set(self.data.getlist("unmapped_key")) if hasattr(self.data, "getlist") else set()
        choice = self.data.get("unmapped", "")
        return choice if choice in ("drop", "keep") and confirmed == {u.key for u in unstored} else ""
