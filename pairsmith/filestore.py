"""Where uploads and export files live: local folders (STORAGE_URL unset) or an S3-compatible store.

Two areas, each a Django storage (settings.STORAGES): "exports" (EXPORT_ROOT, or <prefix>/exports/ in the bucket) and
"imports" (VAR_DIR/imports, or <prefix>/imports/). Small things (a ledger entry, a listing, a delete) go through the
storage API; big files go through boto3's managed transfers (multipart above TRANSFER.multipart_threshold, a part at
a time, never a whole file in memory) on the storage's own client. With local folders the callers keep their own
path-based code (renames are atomic there); this module is what they call when `object_storage()` is on.

A store that cannot be reached, or answers with an error, raises StoreUnavailable, whose message says which store and
what was being done: jobs put it on their row, views and commands show it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.storage import Storage
from django.utils.module_loading import import_string

MB = 1024**2
# Parts of 16 MB, 4 at once: at most 64 MB of a file in flight, whatever its size.
TRANSFER = TransferConfig(multipart_threshold=16 * MB, multipart_chunksize=16 * MB, max_concurrency=4)
STREAM_CHUNK = 256 * 1024  # bytes per piece when a download streams through the web node
AREAS = ("exports", "imports")
STORE_ERRORS = (BotoCoreError, ClientError)  # what boto raises; `guarded` turns them into StoreUnavailable


class StoreUnavailable(Exception):
    """The object store could not be reached, or refused, while doing `what`."""

    def __init__(self, what: str, exc: Exception) -> None:
        self.what = what
        super().__init__(
            f"The object store ({settings.STORAGE_URL}) failed while {what}: {type(exc).__name__}: {exc}. "
            "Nothing was changed; check that the store is up and reachable, then try again."
        )


def object_storage() -> bool:
    """Whether files live in an S3-compatible store (STORAGE_URL set) rather than local folders."""
    return bool(settings.STORAGE_URL)


_STORES: dict[tuple, Storage] = {}


def store(area: str) -> Storage:
    """The Django storage of `area`, as settings.STORAGES configures it. An S3 storage is kept per configuration:
    making its boto3 client costs a few hundred milliseconds, and its connections are per thread already."""
    if area not in AREAS:
        raise ValueError(f"{area!r} is not a storage area; use one of {', '.join(AREAS)}.")
    config = settings.STORAGES[area]
    options = config.get("OPTIONS", {})
    if not object_storage():
        return import_string(config["BACKEND"])(**options)
    cache_key = (area, config["BACKEND"], repr(sorted(options.items())))
    found = _STORES.get(cache_key)
    if found is None:
        found = _STORES[cache_key] = import_string(config["BACKEND"])(**options)
    return found


@contextmanager
def guarded(what: str) -> Iterator[None]:
    """Turn boto's errors (connection refused, timeouts, access denied, a missing bucket) into StoreUnavailable."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise StoreUnavailable(what, exc) from exc


def _client(area: str):
    return store(area).connection.meta.client


def key(area: str, name: str) -> str:
    """The object key of `name` in `area` (its prefix in front)."""
    return store(area)._normalize_name(name)


def uri(area: str, name: str) -> str:
    """s3://bucket/key of `name`: what export_dataset --json prints."""
    return f"s3://{settings.STORAGE_BUCKET}/{key(area, name)}"


def scratch_dir(kind: str) -> Path:
    """A folder of this node only, for files on their way to or from the store."""
    folder = Path(settings.SCRATCH_DIR) / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def upload_file(area: str, name: str, path: Path) -> None:
    """Send the local file `path` to `name` in `area`: multipart above the threshold, a part at a time."""
    with guarded(f"uploading {name}"):
        if path.stat().st_size < TRANSFER.multipart_threshold:  # one request, no transfer threads
            with open(path, "rb") as handle:
                _client(area).put_object(Bucket=settings.STORAGE_BUCKET, Key=key(area, name), Body=handle)
        else:
            _client(area).upload_file(str(path), settings.STORAGE_BUCKET, key(area, name), Config=TRANSFER)


def download_file(area: str, name: str, path: Path) -> bool:
    """Fetch `name` of `area` into the local file `path` (written under a temporary name, then renamed), in parts.
    Return False when there is no such object."""
    partial = path.with_name(f".{path.name}.part")
    try:
        with guarded(f"downloading {name}"):
            _client(area).download_file(settings.STORAGE_BUCKET, key(area, name), str(partial), Config=TRANSFER)
    except StoreUnavailable as exc:
        partial.unlink(missing_ok=True)
        cause = exc.__cause__
        if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            return False
        raise
    partial.rename(path)
    return True


def copy(area: str, source: str, target: str, *, size: int) -> None:
    """Copy one object of `size` bytes to another key inside the store (no bytes through this node): one request,
    or a multipart copy when large."""
    bucket = settings.STORAGE_BUCKET
    origin = {"Bucket": bucket, "Key": key(area, source)}
    with guarded(f"copying {source} to {target}"):
        if size < TRANSFER.multipart_threshold:
            _client(area).copy_object(CopySource=origin, Bucket=bucket, Key=key(area, target))
        else:
            _client(area).copy(origin, bucket, key(area, target), Config=TRANSFER)


def open_stream(area: str, name: str):
    """(body, size) of an object, the body read a piece at a time; None when there is no such object."""
    try:
        with guarded(f"reading {name}"):
            answer = _client(area).get_object(Bucket=settings.STORAGE_BUCKET, Key=key(area, name))
    except StoreUnavailable as exc:
        cause = exc.__cause__
        if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            return None
        raise
    return answer["Body"], answer["ContentLength"]


def presigned_url(area: str, name: str, *, filename: str, content_type: str) -> str:
    """A URL of the store that serves `name` as an attachment for STORAGE_PRESIGNED_SECONDS, to anyone who has it."""
    with guarded(f"signing a download of {name}"):
        return _client(area).generate_presigned_url(
            "get_object",
            Params={
                "Bucket": settings.STORAGE_BUCKET,
                "Key": key(area, name),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
                "ResponseContentType": content_type,
            },
            ExpiresIn=settings.STORAGE_PRESIGNED_SECONDS,
        )


def exists(area: str, name: str) -> bool:
    with guarded(f"looking for {name}"):
        return store(area).exists(name)


def delete(area: str, name: str) -> None:
    with guarded(f"deleting {name}"):
        store(area).delete(name)


def folders(area: str, prefix: str) -> list[str]:
    """The names of the "folders" right under `prefix` (one listing call per 1,000)."""
    with guarded(f"listing {prefix}"):
        names, _ = store(area).listdir(prefix)
    return names


def delete_prefix(area: str, prefix: str) -> int:
    """Delete every object under `prefix/` (1,000 a request) and abort the multipart uploads left there by a worker
    killed mid-upload. Return how many objects went."""
    client = _client(area)
    bucket = settings.STORAGE_BUCKET
    base = key(area, prefix).rstrip("/") + "/"
    removed = 0
    with guarded(f"deleting {prefix}"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if objects:
                client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
                removed += len(objects)
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=base):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return removed


def unfinished_folders(area: str, prefix: str) -> set[str]:
    """The names of the "folders" right under `prefix` that hold unfinished multipart uploads."""
    client = _client(area)
    base = key(area, prefix).rstrip("/") + "/"
    found = set()
    with guarded(f"listing the unfinished uploads of {prefix}"):
        pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=settings.STORAGE_BUCKET, Prefix=base)
        for page in pages:
            for upload in page.get("Uploads", []):
                rest = upload["Key"][len(base) :]
                if "/" in rest:
                    found.add(rest.split("/", 1)[0])
    return found
