"""Import examples from a file into a task: JSONL, a JSON array, or CSV. All or nothing, streamed, memory bounded.

`examples_import` reads the file once, checking each record as it inserts it, in batches inside ONE transaction:
each example with its first revision (when it has a completion) and, imported as submitted or approved, the
transition from new that `services.example_create` records (imported as new, the example has not moved: its source
and creation time, and the audit log's entry for the import, say what such a row would). COPY on PostgreSQL (a
thread reads, checks and formats the next batch while the server loads the current one), bulk_create elsewhere.
The task's unique index on (task, external id) refuses a repeated id. At the first problem the transaction is rolled
back, so nothing is imported unless every record is good, and `import_check` reads the whole file to name every
problem: up to MAX_ERRORS, each with the line (JSONL, JSON) or the row (CSV, counted as in a spreadsheet: the header
is row 1) and the field, external ids checked against the rest of the file and the task's examples (in a temporary
SQLite database, so memory stays bounded). A good file is read once; a bad one stops early and is read again to
explain it.

Small files import in the lead's request; larger ones (INLINE_MAX_RECORDS, INLINE_MAX_BYTES) run as an ImportJob
on a Celery worker, which reports progress on its row (`import_start`, `import_run`).

A record is one of these shapes; its keys are matched to fields by name, or by the lead's mapping, which may also
take a field from a path into a nested value (mapping.py):

- `{instruction, context?, input?, output? | completion?, kind?, id?}`
- `{prompt, completion?}`: the prompt is the instruction.
- `{messages: [{role, content}, ...]}` in the OpenAI chat shape (roles system, user, assistant). A final assistant
  message is the completion; the user message before it is the instruction; the turns before that user message
  (a system message included, as given) are the example's prior messages. Without a final assistant message the
  example has no completion yet, and the last message must be the user's.

`id` becomes the external id (unique per task); `kind` is happy (the default), edge, negative or ambiguous. A key
that no field takes is refused (named at its first record) unless the lead allows dropping it or keeps it on the
example as metadata. Empty values and JSON null count as absent.

Hostile input is refused with a message that names the limit or the problem and where it is: a file over
MAX_IMPORT_BYTES (setting), more than MAX_IMPORT_ROWS records (setting, default 2,000,000; reading stops there), a
record over MAX_RECORD_BYTES, a field over MAX_FIELD_CHARS, invalid UTF-8 (a BOM at the start is dropped; lines may
end in CRLF), a NUL or an unpaired surrogate, JSON nested deeper than about 1,000 levels or a number too long to read.
Values are text: a CSV cell such as `=cmd()` is stored as written and never evaluated, and a URL is never fetched
(nothing here imports from URLs; a file comes from the lead's computer or the command line).

The package, along its seams (each module imports only those above it):

- limits: the sizes and limits, read as `limits.NAME` when used, so a test can change one everywhere at once;
- common: the errors (ImportFailed, ImportCancelled), statuses, and how user text is quoted in a problem;
- reading: the readers of JSONL, JSON arrays and CSV, and the format's detection;
- mapping: the lead's mapping (keys, paths into nested values, keys dropped or kept) and paths' reading;
- records: a raw record mapped to the fields of an example (Mapper) and checked;
- checking: `import_check`, which names every problem of a file, and the progress reporters' interface;
- loading: `examples_import`, the one-pass import (COPY on PostgreSQL, bulk_create elsewhere);
- jobs: uploads waiting for the lead's mapping, the preview, and imports as jobs (`import_start`, `import_run`);
- previews: what the mapping page shows: what each path picks, and the keys that would not be stored;
- pending: the per-user quota of uploads waiting for the lead's go-ahead.
"""

from .checking import Progress, Reporter, import_check
from .common import IMPORT_STATUSES, ImportCancelled, ImportFailed, human_size, max_import_rows
from .jobs import (
    LISTING_PROBLEMS,
    JobReporter,
    Upload,
    default_mapping,
    import_cancel,
    import_run,
    import_start,
    preview,
    source_keys,
    upload_accept,
    upload_dir,
    upload_discard,
    upload_local,
    upload_path,
    upload_share,
    upload_token,
    uploads_prune,
)
from .limits import (
    BATCH_SIZE,
    INLINE_MAX_BYTES,
    INLINE_MAX_RECORDS,
    MAX_ERRORS,
    MAX_FIELD_CHARS,
    MAX_RECORD_BYTES,
    PREVIEW_RECORDS,
)
from .loading import _copy_text, _CopyLoader, _escaped, _short_switch_interval, _uuid4s, examples_import
from .reading import FileFormat, detect_format, locate_bad_utf8
from .records import FIELDS, NAME_MATCHES, Mapper, Record

__all__ = [
    "BATCH_SIZE",
    "FIELDS",
    "IMPORT_STATUSES",
    "INLINE_MAX_BYTES",
    "INLINE_MAX_RECORDS",
    "LISTING_PROBLEMS",
    "MAX_ERRORS",
    "MAX_FIELD_CHARS",
    "MAX_RECORD_BYTES",
    "NAME_MATCHES",
    "PREVIEW_RECORDS",
    "FileFormat",
    "ImportCancelled",
    "ImportFailed",
    "JobReporter",
    "Mapper",
    "Progress",
    "Record",
    "Reporter",
    "Upload",
    "_CopyLoader",
    "_copy_text",
    "_escaped",
    "_short_switch_interval",
    "_uuid4s",
    "default_mapping",
    "detect_format",
    "examples_import",
    "human_size",
    "import_cancel",
    "import_check",
    "import_run",
    "import_start",
    "locate_bad_utf8",
    "max_import_rows",
    "preview",
    "source_keys",
    "upload_accept",
    "upload_dir",
    "upload_path",
    "upload_discard",
    "upload_local",
    "upload_share",
    "upload_token",
    "uploads_prune",
]
