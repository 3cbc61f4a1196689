"""The contamination check: held-out (validation, test) prompts found again in train, exactly or nearly; reported in
the manifest, the card and on the page, and blocking the export when the task says so."""

import json
import uuid as uuid_module
from pathlib import Path

import pytest

from annotate.models import Example
from annotate.quality import near_duplicates
from annotate.quality.prompt_signature import prompt_signature, stored
from annotate.services import prompt_hash
from exports.contamination import Contamination
from exports.matching import WINDOW
from exports.services import split_of
from pairsmith.jobs import JobState

from .conftest import approve, build, version_folder

pytestmark = pytest.mark.django_db

RATIOS = {"ratio": 0.2, "test_ratio": 0.2}


def uuid_in(task, side: str) -> uuid_module.UUID:
    """A UUID whose example the rule puts in `side` with RATIOS and the task's seed."""
    while True:
        candidate = uuid_module.uuid4()
        if split_of(seed=task.split_seed, uuid=str(candidate), **RATIOS) == side:
            return candidate


def one(task, side: str, instruction: str, *, start: int, stored_hash: bool = True):
    fields = {"instruction": instruction, "context": "", "input": ""}
    values = {"uuid": uuid_in(task, side), "instruction": instruction, "context": ""}
    if stored_hash:
        values["prompt_hash"] = prompt_hash(fields)
    (example,) = approve(task, 1, start=start, **values)
    return example


LONG = "Please explain step by step how the customer can track the parcel that was shipped on Monday"


def filler(task, n: int = 30) -> None:
    for i in range(n):
        approve(task, 1, start=500 + i, instruction=f"Unrelated question number {i} about invoices {i * 7}")


def export_of(task, lead, **options):
    return build(task, user=lead, validation_ratio=RATIOS["ratio"], test_ratio=RATIOS["test_ratio"], **options)


@pytest.mark.parametrize("matching", ["here", "own process"])
def test_exact_and_near_duplicates_of_held_out_prompts_are_reported(task, lead, matching, monkeypatch):
    """Both ways of matching (in the export's process, or, on a large export, in a process of its own reading the
    scratch files as they grow: exports/matching.py) give this report."""
    if matching == "own process":
        monkeypatch.setattr("exports.matching.PROCESS_MIN_ROWS", 1)
    filler(task)
    held_exact = one(task, "validation", "Where is my parcel?", start=1)
    train_exact = one(task, "train", "WHERE is my   parcel", start=2, stored_hash=False)  # folded: the same prompt
    held_near = one(task, "test", LONG, start=3)
    train_near = one(task, "train", LONG.replace("Monday", "Tuesday"), start=4)
    export = export_of(task, lead)
    assert export.state == JobState.SUCCEEDED, export.error
    report = export.contamination
    assert (report["exact"], report["near"]) == (1, 1)
    pairs = {(p["train"]["uuid"], p["held_out"]["uuid"], p["split"], p["kind"]) for p in report["pairs"]}
    assert pairs == {
        (str(train_exact.uuid), str(held_exact.uuid), "validation", "exact"),
        (str(train_near.uuid), str(held_near.uuid), "test", "near"),
    }
    near = next(p for p in report["pairs"] if p["kind"] == "near")
    assert near_duplicates.NEAR_DUP_THRESHOLD <= near["similarity"] < 1
    folder = version_folder(export)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["contamination"] == report
    card = (folder / "README.md").read_text()
    assert "**Contamination**: 1 train examples repeat a validation or test prompt exactly and 1 nearly" in card
    assert f"| {train_near.pk} | {held_near.pk} | test | near |" in card


def test_no_contamination_says_so_and_nothing_held_out_checks_nothing(task, lead):
    filler(task)
    export = export_of(task, lead)
    assert export.contamination["exact"] == export.contamination["near"] == 0
    assert export.contamination["held_out"] == export.counts["validation"] + export.counts["test"] > 0
    assert "none of the" in (version_folder(export) / "README.md").read_text()
    plain = build(task, user=lead, validation_ratio=0, test_ratio=0)
    assert plain.contamination == {}
    assert "nothing was checked for contamination" in (version_folder(plain) / "README.md").read_text()


def test_short_prompts_are_only_checked_exactly(task, lead):
    """Prompts under NEAR_DUP_MIN_WORDS words differ meaningfully by one word (the quality scan's rule)."""
    filler(task)
    one(task, "validation", "Capital of Spain?", start=1)
    one(task, "train", "Capital of France?", start=2)
    export = export_of(task, lead)
    assert (export.contamination["exact"], export.contamination["near"]) == (0, 0)


def test_contamination_blocks_the_export_when_the_task_says_so(task, lead):
    task.contamination_blocks = True
    task.save()
    filler(task)
    held = one(task, "test", "Where is my parcel?", start=1)
    train = one(task, "train", "where is my parcel!", start=2)
    export = export_of(task, lead)
    assert export.state == JobState.FAILED
    assert "Contamination blocks this export (task setting): 1 exact and 0 near duplicate(s)" in export.error
    assert f"train example {train.pk} ({train.uuid}) repeats test example {held.pk} ({held.uuid})" in export.error
    assert export.contamination["exact"] == 1
    assert not version_folder(export).exists()
    assert not list(version_folder(export).parent.glob(".partial-*"))


def test_matching_is_bounded_per_train_row_however_many_prompts_collide(tmp_path):
    """Thousands of nearly equal prompts land in the same band buckets: each train row is still compared with at
    most bands × WINDOW held-out rows (a quadratic join would compare 600 × 600)."""
    check = Contamination(tmp_path / ".signatures")
    words = "the parcel was shipped on monday and should arrive soon please check the tracking page"
    for pk in range(1200):
        side = 1 if pk % 2 else 0
        check.add_rows([laid_out(pk, side, f"{pk + 1:016x}" * 4, (f"{words} {pk % 3}", "", ""))])
    report = check.finish()
    bands = near_duplicates.BANDS
    assert 0 < check.compared <= report["train"] * WINDOW < report["train"] * bands * WINDOW  # a match ends the search
    assert report["near"] == report["train"] == 600  # every train row has a near twin held out
    assert len(report["pairs"]) == 20 and not (tmp_path / ".signatures").exists()


def laid_out(pk, side, stored_hash, fields, turns=None, signature=None) -> tuple:
    """A row in exports.reading.approved_rows' layout, as the export hands it to the check (prior turns as JSON text,
    as PostgreSQL gives them)."""
    return (pk, "", 0, *fields, "", "", json.dumps(turns or []), "", "", stored_hash, "", signature, side)


def test_batch_signatures_equal_the_scans_signatures_of_the_folded_fields():
    """The check folds ASCII text with numpy and signs each distinct field text once a batch; its signatures must be
    exactly the scan's (near_duplicates.signatures over text.fold of each field), whatever the text."""
    import random

    import numpy as np

    from annotate.quality.prompt_signature import FIELDS
    from annotate.quality.text import fold
    from exports.contamination import _prepare

    rng = random.Random(7)
    words = [
        "Alpha",
        "beta,",
        "GAMMA",
        "delta!",
        "eps??",
        "zeta",
        "eta-theta",
        "iota",
        "ça",
        "Ärger",
        "naïve",
        "東京",
        "—",
        "x_y",
        "42",
    ]
    shared = "A shared context, repeated by many rows:  " * 6
    batch = []
    for i in range(600):
        fields = tuple(
            rng.choice([" ", "  ", "\n", "\t", ", "]).join(rng.choices(words, k=rng.randint(0, 25))) for _ in range(3)
        )
        if i % 3 == 0:
            fields = (fields[0], shared, fields[2])
        if i % 17 == 0:
            fields = ("!!! ...", "", "  ")
        turns = [{"role": "user", "content": " ".join(rng.choices(words, k=12))}] if i % 5 == 0 else None
        batch.append((i, i % 3, "" if i % 7 == 0 else f"{i:016x}" + "0" * 48, fields, turns, None))
    ids, sides, keys, signed, signature = _prepare([laid_out(*row) for row in batch])
    # The same batch with the signatures stored (as a save or an import stores them), all or every other row: the
    # same result, read instead of computed.
    kept = stored([(fields, turns) for _, _, _, fields, turns, _ in batch])
    for every in (1, 2):
        mixed = [laid_out(*row[:5], kept[i] if i % every == 0 else None) for i, row in enumerate(batch)]
        _, _, _, signed_again, signature_again = _prepare(mixed)
        assert (signed_again == signed).all() and (signature_again == signature).all()

    segments, segment_row, segment_field, expected_signed = [], [], [], []
    for i, (_, _, _, fields, turns, _) in enumerate(batch):
        folded = [fold(text) for text in fields]
        folded.append(b" ".join(fold(turn["content"]) for turn in turns) if turns else b"")
        if sum(part.count(b" ") + 1 for part in folded if part) >= near_duplicates.NEAR_DUP_MIN_WORDS:
            row = len(expected_signed)
            expected_signed.append(i)
            for field, part in enumerate(folded[:FIELDS]):
                if part:
                    segments.append(part)
                    segment_row.append(row)
                    segment_field.append(field)
    expected = near_duplicates.signatures(
        segments, np.array(segment_row), np.array(segment_field), len(expected_signed)
    )
    assert np.flatnonzero(signed).tolist() == expected_signed
    assert 0 < len(expected_signed) < len(batch)
    assert (signature == expected).all()
    assert ids.tolist() == list(range(600)) and sides.tolist() == [i % 3 for i in range(600)]
    unhashed = dict(zip(("instruction", "context", "input"), batch[7][3], strict=True))
    assert keys[1] == 1 and keys[7] == int(prompt_hash(unhashed, batch[7][4] or ())[:16], 16)


def test_held_out_rows_matched_a_chunk_at_a_time_give_the_same_report(tmp_path, monkeypatch):
    """Held-out rows are matched a chunk at a time, so memory stays flat however large the export: a train row found
    near in one chunk and exact in a later one counts as exact, as in one pass; nothing is counted twice. On a large
    export the matching runs in a process of its own while the rows come (each chunk meeting the train rows before
    it a few blocks at a time, and the later ones as they come; chunks beyond LIVE_CHUNKS at the end): the report is
    the one the export's own process makes at the end, the pairs it names included."""
    import exports.contamination as module
    import exports.matching as matching

    words = "the parcel was shipped on monday and should arrive soon please check the tracking page"
    monkeypatch.setattr(module, "BATCH", 16)  # many batches: chunks fill and catch up while rows still come

    def run(folder, chunk: int, *, process: bool = False, live: int = 4, block: int = 16_384, catch_up: int = 4):
        for name, value in (("HELD_CHUNK", chunk), ("LIVE_CHUNKS", live), ("BLOCK", block), ("CATCH_UP", catch_up)):
            monkeypatch.setattr(matching, name, value)  # the matching process is given the same
        folder.mkdir()
        check = Contamination(folder / ".signatures", process=process)
        for pk in range(1, 401):
            side = (1, 2, 0, 0, 0)[pk % 5]
            key = f"{(pk % 37 if pk % 4 == 0 else 1000 + pk) + 1:016x}" * 4  # some prompts repeat exactly
            text = f"{words} {pk % 11}" if pk % 3 else f"question {pk} alone"  # and nearly
            check.add_rows([laid_out(pk, side, key, (text, "", ""))])
        report = check.finish()
        assert not list(folder.glob(".signatures*"))
        return report

    whole, chunked = run(tmp_path / "one", 10_000), run(tmp_path / "many", 7)
    assert whole["exact"] > 0 and whole["near"] > 0
    assert whole["exact"] + whole["near"] <= whole["train"]
    assert (chunked["exact"], chunked["near"], chunked["held_out"], chunked["train"]) == (
        whole["exact"], whole["near"], whole["held_out"], whole["train"]
    )  # fmt: skip
    exact_pairs = [(p["train"], p["kind"]) for p in whole["pairs"] if p["kind"] == "exact"]
    assert exact_pairs == [(p["train"], p["kind"]) for p in chunked["pairs"] if p["kind"] == "exact"]
    # in a process of its own, catching up 5 rows a block of 5: chunks fill while rows come, several behind at once
    assert run(tmp_path / "process", 7, process=True, live=3, block=5, catch_up=1) == chunked
    assert run(tmp_path / "at-the-end", 7, process=True, live=0) == chunked  # every chunk matched at the end
    assert run(tmp_path / "all-live", 7, process=True, live=1_000) == chunked


def test_a_matching_process_that_dies_fails_the_check_with_its_reason(tmp_path):
    """The matching process killed (out of memory, say) while rows come: the check raises, naming the matching, and
    leaves no scratch file."""
    import signal

    from exports.contamination import MatchingFailed

    check = Contamination(tmp_path / ".signatures", process=True)
    check.add_rows([laid_out(1, 1, "1" * 64, ("a held-out prompt", "", ""))])
    check.add_rows([laid_out(2, 0, "2" * 64, ("a train prompt", "", ""))])
    check._submit()
    check._pending[0].result()
    check._matcher.send_signal(signal.SIGKILL)
    check._matcher.wait()
    with pytest.raises(MatchingFailed, match="the contamination check's matching stopped"):
        check.finish()
    assert not list(tmp_path.glob(".signatures*"))


def test_the_check_reads_the_stored_signatures(task, lead):
    """Examples store their prompt's signature when written; the check reads it (the same report as signing the
    texts), and signs only rows without one. A stored signature is what the check compares: a train example given
    a held-out prompt's signature is reported near, whatever its text."""
    filler(task)
    one(task, "test", LONG, start=3)
    near = one(task, "train", LONG.replace("Monday", "Tuesday"), start=4)
    other = one(task, "train", "Write a short poem about the sea at night and the lighthouse keeper", start=5)
    signed = export_of(task, lead).contamination  # nothing stored (bulk_create): the check signs every prompt
    for example in Example.objects.filter(task=task):
        fields = {"instruction": example.instruction, "context": example.context, "input": example.input}
        Example.objects.filter(pk=example.pk).update(prompt_signature=prompt_signature(fields, example.messages))
    read = export_of(task, lead).contamination
    assert (read["exact"], read["near"], read["pairs"]) == (signed["exact"], signed["near"], signed["pairs"])
    assert [pair["train"]["id"] for pair in read["pairs"]] == [near.pk]
    Example.objects.filter(pk=other.pk).update(prompt_signature=prompt_signature({"instruction": LONG}))
    forged = export_of(task, lead).contamination
    assert forged["near"] == 2 and {pair["train"]["id"] for pair in forged["pairs"]} == {near.pk, other.pk}


def test_equal_bytes_counts_what_a_plain_comparison_counts():
    """Near matching counts equal signature bytes with word additions (matching._equal_bytes) and gathers rows
    as 64-byte items: the same counts as comparing the rows byte by byte, from 0 to 64 equal bytes."""
    import numpy as np

    from exports.matching import _equal_bytes, _items, _rows

    rng = np.random.default_rng(7)
    a = rng.integers(0, 3, (500, 64), dtype=np.uint8)
    b = rng.integers(0, 3, (700, 64), dtype=np.uint8)
    b[:65] = a[:65]
    for row in range(65):  # 64 - row bytes equal
        b[row, :row] = a[row, :row] + 1
    pick_a, pick_b = rng.integers(0, 500, 2_000), rng.integers(0, 700, 2_000)
    pick_a[:65] = pick_b[:65] = np.arange(65)
    counts = _equal_bytes(_rows(_items(a)[pick_a]), _rows(_items(b)[pick_b]))
    assert counts.tolist() == (a[pick_a] == b[pick_b]).sum(axis=1).tolist()
    assert counts[:65].tolist() == [64 - row for row in range(65)]


def test_the_matching_process_finds_scratch_files_given_relative_to_the_workers_folder(tmp_path, monkeypatch):
    """EXPORT_ROOT or SCRATCH_DIR may be relative to the worker's folder; the matching process runs in the project's
    folder, so it is given the scratch files' absolute paths."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "relative").mkdir()
    check = Contamination(Path("relative") / ".signatures", process=True)
    words = "the parcel was shipped on monday and should arrive soon please check the tracking page"
    for pk in range(1, 61):
        check.add_rows([laid_out(pk, 1 if pk % 3 == 0 else 0, f"{pk % 7 + 1:016x}" * 4, (f"{words} {pk % 5}", "", ""))])
    report = check.finish()
    assert (report["train"], report["held_out"], report["exact"]) == (40, 20, 40)  # each key repeats held out
    assert not list((tmp_path / "relative").iterdir())


@pytest.mark.parametrize("process", [False, True])
def test_a_train_row_meets_the_held_out_chunks_in_id_order(tmp_path, monkeypatch, process):
    """A train prompt repeated by held-out rows in two chunks is reported with the first one's, as one pass over the
    held-out rows in id order reports it, whichever chunk happens to be matched first (here both wait behind the
    train rows, in this process or in the matching process)."""
    import exports.matching as matching

    monkeypatch.setattr(matching, "HELD_CHUNK", 2)
    same = "a" * 64
    check = Contamination(tmp_path / ".signatures", process=process)
    rows = [(1, 0, same), (2, 0, "b" * 64), (3, 1, same), (4, 1, "c" * 64), (5, 2, "d" * 64), (6, 2, same)]
    check.add_rows([laid_out(pk, side, key, ("short", "", "")) for pk, side, key in rows])
    report = check.finish()
    assert (report["exact"], report["near"]) == (1, 0)
    assert [(p["train"], p["held_out"], p["split"]) for p in report["pairs"]] == [(1, 3, "validation")]
