"""The limits and sizes of an import, in one place. Other modules read them as `limits.NAME` when they run,
so that a test (or a future setting) can change one for every module at once."""

from ..limits import MAX_FIELD_CHARS  # noqa: F401  (the longest text a field or chat message may hold: one limit for all)

DEFAULT_MAX_IMPORT_ROWS = 2_000_000  # records a file may hold; the MAX_IMPORT_ROWS setting overrides it
MAX_RECORD_BYTES = 16 * 1024 * 1024  # the longest JSONL line or JSON array element: bounds the memory of one record
MAX_ERRORS = 20  # problems reported in full; the rest are counted ("and N more")
INLINE_MAX_RECORDS = 5_000  # up to this many records (and INLINE_MAX_BYTES) import in the request; more run as a job
INLINE_MAX_BYTES = 5 * 1024 * 1024
PREVIEW_RECORDS = 10
SAMPLE_RECORDS = 200  # records read to find the keys of a JSON file, for the column mapping
MAX_KEYS = 200  # keys offered in the column mapping (the rest still match by name)
MAX_KEY_CHARS = 1_000  # a longer key cannot be mapped (it matches no name either): it is ignored
BATCH_SIZE = 5_000  # rows per insert batch, and external ids per duplicate check
CSV_CHUNK_ROWS = 10_000
READ_CHUNK = 1024 * 1024
PROGRESS_SECONDS = 0.5
UPLOAD_MAX_AGE_SECONDS = 24 * 3600  # an upload nobody committed is deleted after this
