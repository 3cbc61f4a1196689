"""Task-wide checks: a DataFrame (or a stream of them) in, per-example findings and task-level figures out.

Built for 1,000,000 examples in about 90 s of CPU and well under 1 GB: each chunk is folded row by row once,
and only compact columns survive it (64-bit keys, small integer codes, lengths, 64-byte MinHash signatures), so
memory grows with the rows, not with their text. Feed `check_task` an iterator of chunks (for example a server-side
cursor read 20,000 rows at a time) to keep the text of one chunk in memory at a time.

Columns read (missing ones count as empty): id, instruction, context, input, messages (chat turns: a list or its
JSON text), completion, kind, status, prompt_hash (the stored services.prompt_hash; computed when absent), and
template_id (a tools task checks each example's calls against its own template version's tool set; without it, the
current version's).
"""

import hashlib
import math
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import near_duplicates, style
from .checks import CHAT, JSON, LABEL, PROMPT_FIELDS, TEXT, TOOLS, Finding, TaskRules, _as_turns, example_findings
from .text import count_tokens, fold, fold_counted, prompt_key
from .tools import ToolTally
from .tools import completion_key as tool_completion_key

KINDS = ("happy", "edge", "negative", "ambiguous")
CHUNK_ROWS = 20_000  # a DataFrame given whole is scanned in chunks this size
APPROVED = "approved"
REJECTED = "rejected"  # kept, never exported: left out of the task's patterns and shares

# Label balance: a label used for less than this share of an even split is flagged ...
LABEL_BALANCE_FACTOR = 0.5
# ... once this many completions carry a label.
LABEL_BALANCE_MIN_EXAMPLES = 20
# Example ids listed in a group finding's detail.
GROUP_IDS_SHOWN = 5

_FINDING_COLUMNS = ("example_id", "code", "blocking", "message", "detail")
_NO_REQUIRED = ("instruction",)


@dataclass
class TaskReport:
    """The result of check_task.

    findings: one row per warning about an example: example_id, code, blocking, message, detail (a dict). Group
    findings (duplicate, near_duplicate, contradiction) carry detail["group"] (a stable key), detail["size"] and
    detail["examples"] (the first few ids of the group, this one possibly among them).
    task_findings: warnings about the task as a whole (coverage, label_balance).
    totals: examples (rows given), in_play (not rejected), with_completion, approved, prompt_tokens and
    completion_tokens (all rows), approved_tokens (prompt + completion of approved rows), kinds and kind_shares and
    labels (rows in play).
    timings: seconds spent per check.
    """

    findings: pd.DataFrame
    task_findings: list[Finding]
    totals: dict
    timings: dict[str, float] = field(default_factory=dict)

    def for_example(self, example_id: Any) -> list[Finding]:
        rows = self.findings[self.findings["example_id"] == example_id]
        return [Finding(r.code, r.message, bool(r.blocking), r.detail) for r in rows.itertuples(index=False)]

    def by_example(self) -> dict[Any, list[Finding]]:
        out: dict[Any, list[Finding]] = {}
        for r in self.findings.itertuples(index=False):
            out.setdefault(r.example_id, []).append(Finding(r.code, r.message, bool(r.blocking), r.detail))
        return out

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.findings["code"].value_counts().items()}


def check_task(
    data: pd.DataFrame | Iterable[pd.DataFrame],
    task: Any,
    *,
    per_example: bool = True,
    near_duplicates_check: bool = True,
) -> TaskReport:
    """The task-wide checks over the rows given, plus each row's per-example checks (leak, format, ...) unless
    per_example is False: a TaskReport. Which rows count where: duplicates and near duplicates, every row;
    contradictions, approved rows; coverage, label balance, length outliers and opening/sign-off patterns, the rows
    not rejected. Without a status column every row counts as approved.
    """
    scan = TaskScan(task, per_example=per_example, near_duplicates_check=near_duplicates_check)
    if isinstance(data, pd.DataFrame):
        data = [data.iloc[start : start + CHUNK_ROWS] for start in range(0, len(data), CHUNK_ROWS)] or [data]
    for frame in data:
        scan.add(frame)
    return scan.finish()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _column(frame: pd.DataFrame, name: str, n: int) -> list:
    return frame[name].tolist() if name in frame.columns else [None] * n


def _json_id(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, int | str) else str(value)


def _share(n: int, total: int) -> str:
    return f"{100 * n / total:.0f}%" if total else "0%"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class TaskScan:
    """check_task in steps: add() each chunk, then finish(). Keeps only compact per-row columns between chunks."""

    def __init__(self, task: Any, *, per_example: bool = True, near_duplicates_check: bool = True) -> None:
        self.rules = TaskRules.of(task)
        self.per_example = per_example
        self.near_duplicates_check = near_duplicates_check
        self.n = 0
        self.ids: list[np.ndarray] = []
        self.columns: dict[str, list[np.ndarray]] = {
            name: []
            for name in (
                "prompt", "completion", "approved", "in_play", "kind", "label", "chars", "ptok", "ctok", "words",
                "inst", "input_words", "question", "explain",
            )
        }  # fmt: skip
        self.columns.update(opener=[], signoff=[])
        self.signature_rows: list[np.ndarray] = []
        self.signatures: list[Future | None] = []
        self._minhash: ThreadPoolExecutor | None = None
        self.openers, self.signoffs = style.opening_codes(), style.signoff_codes()
        self.found_rows: list[int] = []
        self.found: list[Finding] = []
        self.timings: dict[str, float] = {}
        self.has_status = self.has_kind = False
        self.tool_tally = ToolTally(self.rules) if self.rules.output_format == TOOLS else None

    def _time(self, name: str, started: float) -> float:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - started
        return now

    def _signatures(self, segments: list[bytes], rows: np.ndarray, fields: list[int], n_rows: int) -> np.ndarray:
        started = time.perf_counter()
        signature = near_duplicates.signatures(segments, rows, np.asarray(fields), n_rows)
        self._time("minhash (background)", started)
        return signature

    def add(self, frame: pd.DataFrame) -> None:
        started = time.perf_counter()
        n = len(frame)
        rules = self.rules
        base = self.n
        self.ids.append(frame["id"].to_numpy() if "id" in frame.columns else np.arange(base, base + n))
        instructions, contexts, inputs = (_column(frame, name, n) for name in PROMPT_FIELDS)
        completions = _column(frame, "completion", n)
        messages = _column(frame, "messages", n)
        hashes = _column(frame, "prompt_hash", n)
        # the fields each row's template requires (scans.py adds them per template version); else the instruction
        required = _column(frame, "required", n)
        # a tools task's example is checked against the tool set of its own template version (rules.tools_for)
        template_ids = _column(frame, "template_id", n) if rules.output_format == TOOLS else None
        self.has_status |= "status" in frame.columns
        self.has_kind |= "kind" in frame.columns
        statuses = _column(frame, "status", n) if "status" in frame.columns else [APPROVED] * n
        kinds = _column(frame, "kind", n)
        is_chat = rules.output_format == CHAT
        is_label = rules.output_format == LABEL
        is_text = rules.output_format == TEXT
        label_index = {label: i for i, label in enumerate(rules.labels)}

        prompt: list[int] = []
        completion_key: list[int] = []
        chars: list[int] = []
        ptok: list[int] = []
        ctok: list[int] = []
        label: list[int] = []
        opener: list[int] = []
        signoff: list[int] = []
        completion_words: list[int] = []
        inst: list[int] = []
        input_words_column: list[int] = []
        question: list[bool] = []
        explain: list[bool] = []
        segments: list[bytes] = []
        segment_row: list[int] = []
        segment_field: list[int] = []
        check_near = self.near_duplicates_check
        min_words = near_duplicates.NEAR_DUP_MIN_WORDS
        consistency = rules.output_format not in (LABEL, JSON, TOOLS)
        tool_tally = self.tool_tally
        blake2b = hashlib.blake2b
        last_instruction = last_context = ""
        instruction_folded = context_folded = fold_counted("")
        instruction_traits = (hash(instruction_folded[0]), False, False)

        for i in range(n):
            fields = {"instruction": _text(instructions[i]), "context": _text(contexts[i]), "input": _text(inputs[i])}
            # a task's instruction is often the same on every row, and a context shared by neighbouring rows
            if fields["instruction"] != last_instruction:
                last_instruction, instruction_folded = fields["instruction"], fold_counted(fields["instruction"])
                if is_text:  # what "very short" reads of the instruction (style.short), once per distinct one
                    instruction_traits = (
                        hash(instruction_folded[0]),
                        last_instruction.rstrip().endswith("?"),
                        instruction_folded[0].split(b" ", 1)[0].decode() in style.SHORT_PROSE_VERBS,
                    )
            if fields["context"] != last_context:
                last_context, context_folded = fields["context"], fold_counted(fields["context"])
            folded_instruction, words, tokens = instruction_folded
            folded_context, context_words, context_tokens = context_folded
            folded_input, input_words, input_tokens = fold_counted(fields["input"])
            input_words_column.append(input_words)
            folded = {"instruction": folded_instruction, "context": folded_context, "input": folded_input}
            words += context_words + input_words
            tokens += context_tokens + input_tokens
            completion = _text(completions[i])
            completion_folded, n_words, completion_tokens = fold_counted(completion)
            completion_words.append(n_words)
            if is_text:
                inst.append(instruction_traits[0])
                question.append(instruction_traits[1])
                explain.append(instruction_traits[2])
            turns = _as_turns(messages[i]) if is_chat or messages[i] is not None else []
            turns_ok = isinstance(turns, list) and all(isinstance(t, dict) for t in turns)
            if turns_ok and turns:
                tokens += sum(count_tokens(str(t.get("content") or "")) for t in turns)
            stored = hashes[i]
            key = stored if isinstance(stored, str) and len(stored) >= 16 else None
            if key is None:
                key = prompt_key(folded.values(), turns if turns_ok else ())
            prompt.append(int(key[:16], 16))
            if tool_tally is not None:  # calls compared by function and arguments, not by their JSON text
                completion_key.append(tool_completion_key(completion))
                if statuses[i] != REJECTED:
                    tool_tally.add(turns, completion)
            else:
                completion_key.append(
                    int.from_bytes(blake2b(completion_folded, digest_size=8).digest()) if completion_folded else 0
                )
            chars.append(len(completion))
            ptok.append(tokens)
            ctok.append(completion_tokens)

            if self.per_example:
                needs = required[i] if isinstance(required[i], tuple) else _NO_REQUIRED
                tools = rules.tools_for(_json_id(template_ids[i])) if template_ids is not None else None
                for finding in example_findings(
                    rules, fields, folded, turns, completion, completion_folded, needs, tools
                ):
                    self.found_rows.append(base + i)
                    self.found.append(finding)
            if is_label:
                meant = rules.label_of(completion)[0]
                label.append(label_index[meant] if meant is not None else -1)
            if consistency and completion_folded:
                opener.append(self.openers.code(style.opener(completion)))
                signoff.append(self.signoffs.code(style.signoff(completion)))
            else:
                opener.append(0)
                signoff.append(0)
            if check_near:
                parts = [folded_instruction, folded_context, folded_input]
                if turns_ok and turns:
                    parts.append(b" ".join(fold(str(t.get("content") or "")) for t in turns))
                    words += parts[-1].count(b" ") + 1
                if words >= min_words:
                    for field_number, part in enumerate(parts):
                        if part:
                            segments.append(part)
                            segment_row.append(i)
                            segment_field.append(field_number)
        started = self._time("scan", started)

        if segments:
            rows = np.unique(np.asarray(segment_row, dtype=np.int64))
            local = np.searchsorted(rows, np.asarray(segment_row, dtype=np.int64))
            if self._minhash is None:
                self._minhash = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minhash")
            # numpy releases the GIL, so this chunk's signatures use the second core while the next chunk is folded
            self.signatures.append(self._minhash.submit(self._signatures, segments, local, segment_field, len(rows)))
            self.signature_rows.append(rows + base)
            if sum(not future.done() for future in self.signatures[-3:]) > 2:
                self.signatures[-3].result()  # at most two chunks' texts wait for their turn

        kind_codes = {kind: code for code, kind in enumerate(KINDS)}
        columns = self.columns
        columns["prompt"].append(np.array(prompt, dtype=np.uint64))
        columns["completion"].append(np.array(completion_key, dtype=np.uint64))
        columns["approved"].append(np.fromiter((s == APPROVED for s in statuses), dtype=bool, count=n))
        columns["in_play"].append(np.fromiter((s != REJECTED for s in statuses), dtype=bool, count=n))
        columns["kind"].append(np.fromiter((kind_codes.get(k, -1) for k in kinds), dtype=np.int8, count=n))
        columns["label"].append(np.array(label if is_label else [-1] * n, dtype=np.int16))
        columns["chars"].append(np.array(chars, dtype=np.int32))
        columns["ptok"].append(np.array(ptok, dtype=np.int64))
        columns["ctok"].append(np.array(ctok, dtype=np.int64))
        columns["opener"].append(np.array(opener, dtype=np.int32))
        columns["signoff"].append(np.array(signoff, dtype=np.int32))
        columns["words"].append(np.array(completion_words, dtype=np.int32))
        columns["input_words"].append(np.array(input_words_column, dtype=np.int32))
        columns["inst"].append(np.array(inst if is_text else [0] * n, dtype=np.int64))
        columns["question"].append(np.array(question if is_text else [False] * n, dtype=bool))
        columns["explain"].append(np.array(explain if is_text else [False] * n, dtype=bool))
        self.n += n

    def finish(self) -> TaskReport:
        if not self.n:
            empty = pd.DataFrame({name: pd.Series(dtype=object) for name in _FINDING_COLUMNS})
            return TaskReport(empty, [], self._summary_empty(), dict(self.timings))
        col = {name: np.concatenate(parts) if parts else np.zeros(0) for name, parts in self.columns.items()}
        self.ids_array = np.concatenate(self.ids) if len(self.ids) > 1 else self.ids[0]
        self.ids = []
        rows: list[int] = list(self.found_rows)
        found: list[Finding] = list(self.found)
        self.found_rows, self.found = [], []

        started = time.perf_counter()
        prompt_group, _ = pd.factorize(col["prompt"])
        self._duplicates(col, prompt_group, rows, found)
        started = self._time("duplicate", started)
        near_group = self._near_duplicates(col, prompt_group, rows, found)
        started = self._time("near_duplicate", started)
        self._contradictions(col, prompt_group, near_group, rows, found)
        started = self._time("contradiction", started)
        if self.rules.output_format not in (LABEL, JSON, TOOLS):
            style.consistency(self.rules, col, "opener", self.openers, "inconsistent_prefix", rows, found)
            style.consistency(self.rules, col, "signoff", self.signoffs, "inconsistent_signoff", rows, found)
        started = self._time("consistency", started)
        if self.rules.output_format == TEXT:
            style.short(self.rules, col, rows, found)
        started = self._time("short", started)
        if self.rules.output_format not in (LABEL, TOOLS):
            style.length_outliers(self.rules, col, rows, found)
        started = self._time("length_outlier", started)
        task_findings, totals = self._summary(col)
        self._time("summary", started)

        ids = self.ids_array[np.asarray(rows, dtype=np.int64)] if rows else np.zeros(0, dtype=object)
        findings = pd.DataFrame(
            {
                "example_id": pd.Series(ids, dtype=object),
                "code": pd.Series([f.code for f in found], dtype=object),
                "blocking": pd.Series([f.blocking for f in found], dtype=bool),
                "message": pd.Series([f.message for f in found], dtype=object),
                "detail": pd.Series([f.detail for f in found], dtype=object),
            }
        )
        return TaskReport(findings, task_findings, totals, dict(self.timings))

    # Groups ------------------------------------------------------------------------------------------------

    def _members(self, group: np.ndarray, flagged: np.ndarray) -> dict[int, list[int]]:
        """Row numbers of each group, for the flagged rows' groups (rows in order)."""
        rows = np.flatnonzero(flagged)
        if not len(rows):
            return {}
        order = rows[np.argsort(group[rows], kind="stable")]
        keys = group[order]
        cuts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        return {int(keys[c]): order[c:e].tolist() for c, e in zip(cuts, np.r_[cuts[1:], len(order)], strict=True)}

    def _other(self, members: list[int], row: int):
        """The id of the group's first member other than `row`: the example a finding's evidence points to (scans.py
        turns it into other_uuid and other_external_id)."""
        other = next((m for m in members if m != row), row)
        return _json_id(self.ids_array[other])

    def _shown_ids(self, members: list[int]) -> list:
        return [_json_id(self.ids_array[r]) for r in members[:GROUP_IDS_SHOWN]]

    def _duplicates(self, col: dict, prompt_group: np.ndarray, rows: list, found: list) -> None:
        sizes = np.bincount(prompt_group) if len(prompt_group) else np.zeros(0, dtype=np.int64)
        flagged = sizes[prompt_group] > 1 if len(prompt_group) else np.zeros(0, dtype=bool)
        for members in self._members(prompt_group, flagged).values():
            others = len(members) - 1
            message = f"The same prompt as {_plural(others, 'other example')}, ignoring case, punctuation and spacing."
            detail = {
                "group": f"{int(col['prompt'][members[0]]):016x}",
                "size": len(members),
                "examples": self._shown_ids(members),
            }
            for row in members:
                rows.append(row)
                found.append(self.rules.finding("duplicate", message, **detail, other_id=self._other(members, row)))

    def _near_duplicates(self, col: dict, prompt_group: np.ndarray, rows: list, found: list) -> np.ndarray:
        """Flag near duplicates; return each row's near-duplicate group (-1 when it has no signature)."""
        near_group = np.full(self.n, -1, dtype=np.int64)
        if not self.signatures:
            return near_group
        signature_rows = np.concatenate(self.signature_rows)
        # one representative per exact-duplicate group: exact copies are the duplicate check's business
        first = ~pd.Series(prompt_group[signature_rows]).duplicated().to_numpy()
        representatives = signature_rows[first]
        # copy the representatives' signatures chunk by chunk, letting each chunk go: one full copy at a time
        signature = np.empty((len(representatives), near_duplicates.PERMUTATIONS), dtype=np.uint8)
        filled = offset = 0
        for k, future in enumerate(self.signatures):
            part = future.result()
            keep = first[offset : offset + len(part)]
            signature[filled : filled + int(keep.sum())] = part[keep]
            filled += int(keep.sum())
            offset += len(part)
            self.signatures[k] = None
        self.signatures, self.signature_rows = [], []
        if self._minhash is not None:
            self._minhash.shutdown()
        group, best = near_duplicates.groups(signature)
        del signature
        group_rows = representatives[group]  # the group's first representative, as a row number
        by_prompt = np.full(prompt_group.max() + 1, -1, dtype=np.int64)
        by_prompt[prompt_group[representatives]] = group_rows
        best_by_prompt = np.zeros(len(by_prompt), dtype=np.float32)
        best_by_prompt[prompt_group[representatives]] = best
        near_group = by_prompt[prompt_group]
        prompts_in_group = np.bincount(group, minlength=len(group))[group]  # exact groups per near group
        flagged_reps = representatives[prompts_in_group > 1]
        if not len(flagged_reps):
            return near_group
        flagged = np.isin(near_group, flagged_reps)
        for members in self._members(near_group, flagged).values():
            size = len(members)
            _, where, counts = np.unique(prompt_group[members], return_inverse=True, return_counts=True)
            for row, exact in zip(members, counts[where].tolist(), strict=True):
                others = size - exact
                similar = float(best_by_prompt[prompt_group[row]])
                message = (
                    f"Nearly the same prompt as {_plural(others, 'other example')} "
                    f"(about {similar:.0%} of the word pairs shared)."
                )
                detail = {
                    "group": f"near:{_json_id(self.ids_array[members[0]])}",
                    "size": size,
                    "examples": self._shown_ids(members),
                    "similarity": round(similar, 2),
                }
                twin = next((m for m in members if prompt_group[m] != prompt_group[row]), row)
                rows.append(row)
                found.append(self.rules.finding("near_duplicate", message, **detail, other_id=self._other([twin], -1)))
        return near_group

    def _contradictions(self, col, prompt_group, near_group, rows: list, found: list) -> None:
        eligible = col["approved"] & (col["completion"] != 0)
        done = np.zeros(self.n, dtype=bool)
        for group, basis, prefix in (
            (prompt_group, "the same prompt", ""),
            (near_group, "nearly the same prompt", "near:"),
        ):
            mask = eligible & (group >= 0) & ~done
            if not mask.any():
                continue
            frame = pd.DataFrame({"group": group[mask], "answer": col["completion"][mask]})
            distinct = frame.groupby("group")["answer"].transform("nunique").to_numpy()
            if not (distinct > 1).any():
                continue
            selected = np.flatnonzero(mask)
            flagged = np.zeros(self.n, dtype=bool)
            flagged[selected[distinct > 1]] = True
            for members in self._members(group, flagged).values():
                answers = col["completion"][members]
                answer_list = answers.tolist()
                answers_of = dict(zip(members, answer_list, strict=True))
                distinct, where, counts = np.unique(answers, return_inverse=True, return_counts=True)
                for row, same in zip(members, counts[where].tolist(), strict=True):
                    differing = len(members) - same
                    message = (
                        f"{_plural(differing, 'other approved example')} with {basis} "
                        f"{'has' if differing == 1 else 'have'} a different completion."
                    )
                    key = (
                        f"{int(col['prompt'][members[0]]):016x}"
                        if not prefix
                        else f"near:{_json_id(self.ids_array[group[members[0]]])}"
                    )
                    detail = {
                        "group": key,
                        "size": len(members),
                        "examples": self._shown_ids(members),
                        "completions": len(distinct),
                        "basis": basis,
                    }
                    differs = next(m for m, a in zip(members, answer_list, strict=True) if a != answers_of[row])
                    detail["other_id"] = self._other([differs], -1)
                    rows.append(row)
                    found.append(self.rules.finding("contradiction", message, **detail))
                    done[row] = True

    # Patterns ----------------------------------------------------------------------------------------------

    def _summary_empty(self) -> dict:
        kinds = dict.fromkeys(KINDS, 0)
        return {
            "examples": 0,
            "in_play": 0,
            "with_completion": 0,
            "approved": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "approved_tokens": 0,
            "kinds": kinds,
            "kind_shares": dict.fromkeys(KINDS, 0.0),
            "labels": {},
        }

    # Task level --------------------------------------------------------------------------------------------

    def _summary(self, col: dict) -> tuple[list[Finding], dict]:
        rules = self.rules
        in_play = col["in_play"]
        n = int(in_play.sum())
        task_findings: list[Finding] = []
        kinds = col["kind"][in_play]
        kind_counts = {kind: int((kinds == code).sum()) for code, kind in enumerate(KINDS)}
        if self.has_kind and n:
            for kind, target in sorted(rules.coverage_targets.items()):
                if kind not in kind_counts or not 0 < float(target) < 1:
                    continue
                have = kind_counts[kind]
                if have < float(target) * n:
                    more = math.ceil((float(target) * n - have) / (1 - float(target)))
                    task_findings.append(
                        Finding(
                            "coverage",
                            f"{kind.capitalize()} examples are {_share(have, n)} of {n:,} (target at least "
                            f"{float(target):.0%}): about {more:,} more would reach it.",
                            False,
                            {
                                "kind": kind,
                                "count": have,
                                "share": round(have / n, 4),
                                "target": float(target),
                                "missing": more,
                            },
                        )
                    )
        label_counts: dict[str, int] = {}
        if rules.output_format == LABEL and rules.labels:
            labels = col["label"][in_play]
            counts = np.bincount(labels[labels >= 0].astype(np.int64), minlength=len(rules.labels))
            label_counts = {label: int(c) for label, c in zip(rules.labels, counts, strict=True)}
            labelled = int(counts.sum())
            even = 1 / len(rules.labels)
            if labelled >= LABEL_BALANCE_MIN_EXAMPLES and len(rules.labels) > 1:
                for label, count in label_counts.items():
                    if count < LABEL_BALANCE_FACTOR * even * labelled:
                        task_findings.append(
                            Finding(
                                "label_balance",
                                f"“{label}” is {_share(count, labelled)} of the labelled examples; with "
                                f"{len(rules.labels)} labels an even share would be {even:.0%}.",
                                False,
                                {
                                    "label": label,
                                    "count": count,
                                    "share": round(count / labelled, 4),
                                    "even": round(even, 4),
                                },
                            )
                        )
        approved = col["approved"]
        totals = {
            "examples": self.n,
            "in_play": n,
            "with_completion": int((col["completion"] != 0).sum()),
            "approved": int(approved.sum()),
            "prompt_tokens": int(col["ptok"].sum(dtype=np.int64)),
            "completion_tokens": int(col["ctok"].sum(dtype=np.int64)),
            "approved_tokens": int(
                col["ptok"][approved].sum(dtype=np.int64) + col["ctok"][approved].sum(dtype=np.int64)
            ),
            "kinds": kind_counts,
            "kind_shares": {kind: round(count / n, 4) if n else 0.0 for kind, count in kind_counts.items()},
            "labels": label_counts,
        }
        if self.tool_tally is not None:
            tool_findings, tool_totals = self.tool_tally.findings()
            task_findings += tool_findings
            totals["tools"] = tool_totals
        return task_findings, totals
