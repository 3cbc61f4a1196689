"""The quota of uploads waiting for a lead's go-ahead: per user, across every session of theirs.

A session lists the uploads it works on (views_import); this ledger says whose each one is, so that a user with many
logins cannot keep more than IMPORT_PENDING_MAX_UPLOADS files, nor more than IMPORT_PENDING_MAX_BYTES, waiting on
disk (uploads nobody imports are deleted after UPLOAD_MAX_AGE_SECONDS). One small file per upload, `<token>.json` in
VAR_DIR/imports-pending, holds the user and the size: it goes when the upload becomes a job, is dropped, or is pruned.
With object storage (STORAGE_URL) the ledger is `pending/<token>.json` in the store's "imports" area, with the time
of the upload, so that every web node counts the same uploads.
"""

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction

from pairsmith import filestore

from . import limits
from .common import human_size
from .jobs import upload_dir, upload_path

STORED_LEDGER = "pending"  # with object storage: the ledger's folder in the "imports" area
DEFAULT_MAX_UPLOADS = 5
DEFAULT_MAX_BYTES = 4 * 1024**3


def max_uploads() -> int:
    return int(getattr(settings, "IMPORT_PENDING_MAX_UPLOADS", DEFAULT_MAX_UPLOADS))


def max_bytes() -> int:
    return int(getattr(settings, "IMPORT_PENDING_MAX_BYTES", DEFAULT_MAX_BYTES))


def ledger_dir() -> Path:
    """Beside the uploads' folder, not in it: that folder holds uploads only."""
    return Path(settings.VAR_DIR) / "imports-pending"


def _ledger(token: str) -> Path:
    return ledger_dir() / upload_path(token).with_suffix(".json").name


def _stored_entries() -> Iterator[tuple[str, dict]]:
    """(token, entry) of the ledger in the object store."""
    store = filestore.store("imports")
    with filestore.guarded("reading the uploads waiting to be imported"):
        _, names = store.listdir(STORED_LEDGER)
        for name in names:
            if name.endswith(".json"):
                try:
                    with store.open(f"{STORED_LEDGER}/{name}", "rb") as handle:
                        yield name.removesuffix(".json"), json.loads(handle.read(4096))
                except (OSError, ValueError):  # gone meanwhile
                    continue


def waiting(*, user_id: int) -> list[tuple[str, int]]:
    """(token, size) of the user's uploads still waiting: their file is there and not yet due for pruning. Reads one
    small file per waiting upload of anyone (at most the users times the quota, pruned after a day)."""
    cutoff = time.time() - limits.UPLOAD_MAX_AGE_SECONDS
    found: list[tuple[str, int]] = []
    if filestore.object_storage():
        return [
            (token, int(entry.get("size", 0)))
            for token, entry in _stored_entries()
            if entry.get("user") == user_id and float(entry.get("at", 0)) >= cutoff
        ]
    folder = ledger_dir()
    if not folder.is_dir():
        return found
    for ledger in folder.glob("*.json"):
        try:
            entry = json.loads(ledger.read_text())
            upload = upload_dir() / f"{ledger.stem}.upload"
            if entry.get("user") == user_id and upload.stat().st_mtime >= cutoff:
                found.append((ledger.stem, int(entry.get("size", 0))))
        except (OSError, ValueError):  # gone meanwhile, or not ours to read: not a waiting upload
            continue
    return found


def reserve(*, user, token: str, size: int, replacing: Sequence[str] = ()) -> None:
    """Count the upload `token` (of `size` bytes) against the user's quota, the uploads in `replacing` (dropped by
    the caller once this succeeds) left out. Raise ValidationError naming the limit (and its setting) when the user's
    waiting uploads, with this one, would go over it."""
    with transaction.atomic():
        # Two uploads of one user at once would both see room for one: the user's row serialises them.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        others = [(t, s) for t, s in waiting(user_id=user.pk) if t != token and t not in replacing]
        if len(others) >= max_uploads():
            raise ValidationError(
                f"You already have {len(others)} upload{'s' if len(others) != 1 else ''} waiting to be imported "
                f"(in this or your other sessions); the limit is {max_uploads()} a user "
                "(IMPORT_PENDING_MAX_UPLOADS). Import or re-upload one of them, or wait: an upload nobody imports is "
                "deleted after 24 hours."
            )
        held = sum(s for _, s in others)
        if held + size > max_bytes():
            raise ValidationError(
                f"Your uploads waiting to be imported hold {human_size(held)}; with this file ({human_size(size)}) "
                f"that is over the limit of {human_size(max_bytes())} a user (IMPORT_PENDING_MAX_BYTES). Import "
                "them first, or wait: an upload nobody imports is deleted after 24 hours."
            )
        if filestore.object_storage():
            entry = json.dumps({"user": user.pk, "size": size, "at": time.time()}).encode()
            try:
                with filestore.guarded("counting the upload"):
                    filestore.store("imports").save(f"{STORED_LEDGER}/{token}.json", ContentFile(entry))
            except filestore.StoreUnavailable as exc:
                raise ValidationError(str(exc)) from exc
            return
        ledger_dir().mkdir(parents=True, exist_ok=True)
        _ledger(token).write_text(json.dumps({"user": user.pk, "size": size}))


def release(token: str) -> None:
    """The upload no longer waits (imported as a job, or dropped): it stops counting."""
    if filestore.object_storage():
        with contextlib.suppress(filestore.StoreUnavailable):  # it stops counting after a day anyway
            filestore.delete("imports", f"{STORED_LEDGER}/{_ledger(token).name}")
        return
    _ledger(token).unlink(missing_ok=True)


def prune() -> int:
    """Delete the ledger files whose upload is gone (object storage: those older than a day). Returns how many."""
    if filestore.object_storage():
        cutoff = time.time() - limits.UPLOAD_MAX_AGE_SECONDS
        try:
            stale = [token for token, entry in _stored_entries() if float(entry.get("at", 0)) < cutoff]
            for token in stale:
                filestore.delete("imports", f"{STORED_LEDGER}/{token}.json")
        except filestore.StoreUnavailable:
            return 0
        return len(stale)
    folder = ledger_dir()
    if not folder.is_dir():
        return 0
    removed = 0
    for ledger in folder.glob("*.json"):
        if not (upload_dir() / f"{ledger.stem}.upload").exists():
            ledger.unlink(missing_ok=True)
            removed += 1
    return removed
