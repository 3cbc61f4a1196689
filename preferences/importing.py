"""Import of preference pairs and of candidates to compare, through `import_examples` (annotate.importing hands a
file here when its first record has a preference key). All or nothing; a problem names its line (or row) and field.

Shapes of a record (keys matched by name; `id` is the external id, unique among the task's pairs and comparisons):

- any prompt shape of an example: `{instruction, context?, input?}`, `{prompt}` (text, or a list of chat messages as
  TRL's conversational format has it), or `{messages: [...]}` ending with the user's message; with
- `chosen` and `rejected`: each text, or one assistant message (an object `{"role": "assistant", "content"}` or a
  list holding one), as TRL's preference datasets write them; or
- `candidates: [a, b]`: two unjudged completions (each text or one assistant message), for people to compare;
- OpenAI's DPO shape: `{"input": {"messages": [...]}, "preferred_output": [message], "non_preferred_output": [...]}`.

Tasks of output format `tools`: a side may be an assistant message with `tool_calls` (OpenAI's shape, `{"id", "type":
"function", "function": {"name", "arguments": <JSON text>}}`, or TRL's, arguments as an object), checked against the
task's tool set as a tool example's final turn is (a defined function, arguments valid against its parameters,
distinct ids, no parallel calls unless the task allows them); a side is then stored as a tool completion
(annotate/tools.completion_text). The record's own `tools` (top level, as trl-preference writes it, or in OpenAI's
`input`) and `parallel_tool_calls` may only repeat the task's. Candidates to compare stay text.

Pairs imported as approved count as reviewed (exported); imported as new or submitted, they wait for a reviewer.
The same limits as every import apply (file size, records, record size, field size, storable text).
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotate.audit import audit_record
from annotate.importing import limits
from annotate.importing.checking import Progress, Reporter, _check_file, _check_status, _Problems
from annotate.importing.common import ImportFailed, _shown, locked_task, max_import_rows
from annotate.importing.mapping import Mapping
from annotate.importing.reading import _Fatal, _reader
from annotate.importing.records import EXTERNAL_ID_MAX, _type_name
from annotate.models import AuditEvent, Example, Task
from annotate.quality.text import fold, prompt_key
from annotate.rendering import CHAT_ROLES
from annotate.tools import ToolSet

from .models import Comparison, PreferencePair, Source
from .sides import side_of, text_of, tools_of_record

# A record holding one of these keys makes the file a preference file.
PAIR_KEYS = frozenset({"chosen", "rejected", "preferred_output", "non_preferred_output", "candidates"})
PROMPT_KEYS = frozenset({"instruction", "prompt", "context", "input", "messages"})
KNOWN_KEYS = PAIR_KEYS | PROMPT_KEYS | {"id", "external_id", "tools"}
ROLES = frozenset(CHAT_ROLES)


def is_preference_file(path: Path, file_format: str) -> bool:
    """Whether the file's first record holds a preference key (chosen, rejected, preferred_output, candidates)."""
    try:
        for _, raw, _problem in _reader(path, file_format):
            return type(raw) is dict and any(str(key).strip().lower() in PAIR_KEYS for key in raw)
    except (_Fatal, OSError, ValueError):
        return False  # the example import names what is wrong with the file
    return False


class _Bad(Exception):
    def __init__(self, problems: list[tuple[str | None, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


def _turns(value: Any, where: str, problems: list) -> tuple[str, list]:
    """(instruction, prior turns) of a prompt given as chat messages ending with the user's."""
    if type(value) is not list or not value:
        problems.append((where, f"expected a non-empty array of {{role, content}} messages, got {_type_name(value)}"))
        return "", []
    turns = []
    for i, message in enumerate(value):
        at = f"{where}[{i}]"
        if type(message) is not dict:
            problems.append((at, f"expected an object {{role, content}}, got {_type_name(message)}"))
            return "", []
        role = message.get("role")
        if role not in ROLES:
            shown = _shown(role, 50) if isinstance(role, str) else _type_name(role)
            problems.append((f"{at}.role", f'unknown role "{shown}"; use system, user or assistant'))
            return "", []
        turns.append({"role": role, "content": text_of(message.get("content"), f"{at}.content", problems)})
    if turns[-1]["role"] != "user":
        problems.append((where, "the prompt's last message must be the user's"))
        return "", []
    return turns.pop()["content"], turns


class PairRecord:
    __slots__ = ("candidates", "chosen", "context", "external_id", "id_key", "input", "instruction", "messages",
                 "rejected")  # fmt: skip

    def __init__(self) -> None:
        self.instruction = self.context = self.input = self.chosen = self.rejected = self.external_id = ""
        self.messages: list = []
        self.candidates: tuple[str, str] | None = None
        self.id_key = "id"

    @property
    def prompt_hash(self) -> str:
        return prompt_key((fold(self.instruction), fold(self.context), fold(self.input)), self.messages)


def pair_record(raw: Any, drop: frozenset[str] = frozenset(), tools: ToolSet | None = None) -> PairRecord:
    """The pair (or candidates) of one raw record; `tools`: the task's tool set, for a tools task. Raise _Bad with
    every problem (field, message)."""
    if type(raw) is not dict:
        raise _Bad([(None, f"expected a JSON object {{…}}, got {_type_name(raw)}")])
    problems: list[tuple[str | None, str]] = []
    values: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for key, value in raw.items():
        name = str(key).strip().lower()
        if name not in KNOWN_KEYS:
            if key not in drop:
                problems.append((key, "no field of a preference pair takes this key (or allow dropping it)"))
            continue
        if value is None or value == "":
            continue
        values[name], keys[name] = value, key
    record = PairRecord()
    openai = type(values.get("input")) is dict
    if openai:
        body = values.pop("input")
        if "messages" not in body:
            problems.append((f"{keys['input']}.messages", "missing: the input's chat messages"))
        other = sorted(set(body) - {"messages", "tools", "parallel_tool_calls"})
        if other:
            problems.append((f"{keys['input']}.{_shown(other[0], 40)}", "not supported in a preference pair yet"))
        if "tools" in body or "parallel_tool_calls" in body:
            where = f"{keys['input']}.tools"
            tools_of_record(body.get("tools"), body.get("parallel_tool_calls"), where, tools, problems)
        record.instruction, record.messages = _turns(body.get("messages"), f"{keys['input']}.messages", problems)
    if "tools" in values:  # trl-preference writes the task's tools beside the pair
        tools_of_record(values["tools"], None, keys["tools"], tools, problems)
    for name in ("instruction", "context", "input"):
        if name in values:
            setattr(record, name, text_of(values[name], keys[name], problems))
    prompt = values.get("prompt")
    if prompt is not None:
        if "instruction" in values:
            problems.append((keys["prompt"], 'give either "prompt" or "instruction", not both'))
        elif type(prompt) is list:
            record.instruction, record.messages = _turns(prompt, keys["prompt"], problems)
        else:
            record.instruction = text_of(prompt, keys["prompt"], problems)
    if "messages" in values:
        if prompt is not None or openai or "instruction" in values:
            problems.append((keys["messages"], "give the prompt once: messages, prompt, instruction or input"))
        else:
            record.instruction, record.messages = _turns(values["messages"], keys["messages"], problems)
    if not record.instruction.strip() and not problems:
        problems.append(("instruction", "missing: give an instruction, a prompt, or chat messages"))
    sides = [(k, values[k]) for k in ("chosen", "rejected", "preferred_output", "non_preferred_output") if k in values]
    if "candidates" in values:
        if sides:
            problems.append((keys["candidates"], "give either candidates to compare or chosen and rejected, not both"))
        found = values["candidates"]
        if type(found) is not list or len(found) != 2:
            problems.append((keys["candidates"], "expected an array of exactly two candidates"))
        else:
            no_calls = (
                "candidates to compare are text: tool calls are not compared yet"
                if tools is not None
                else "tool calls need a task of output format tools"
            )
            a, b = (side_of(c, f"{keys['candidates']}[{i}]", problems, None, no_calls) for i, c in enumerate(found))
            record.candidates = (a, b)
    else:
        pair = ("preferred_output", "non_preferred_output") if openai else ("chosen", "rejected")
        for name in pair:
            if name not in values:
                problems.append((name, "missing: a pair needs both sides"))
        if sides and {k for k, _ in sides} != set(pair):
            other = next(k for k, _ in sides if k not in pair) if any(k not in pair for k, _ in sides) else None
            if other:
                problems.append((keys[other], f"does not belong with {' and '.join(pair)}"))
        if pair[0] in values:
            record.chosen = side_of(values[pair[0]], keys[pair[0]], problems, tools)
        if pair[1] in values:
            record.rejected = side_of(values[pair[1]], keys[pair[1]], problems, tools)
    external_id = values.get("external_id", values.get("id", ""))
    id_key = keys.get("external_id", keys.get("id", "id"))
    if type(external_id) is int:
        external_id = str(external_id)
    if type(external_id) is not str:
        problems.append((id_key, f"expected a string or a whole number, got {_type_name(external_id)}"))
    elif len(external_id.strip()) > EXTERNAL_ID_MAX:
        problems.append((id_key, f"longer than {EXTERNAL_ID_MAX} characters"))
    else:
        record.external_id = text_of(external_id.strip(), id_key, problems)
    record.id_key = id_key
    if problems:
        raise _Bad(problems)
    return record


def _records(
    path: Path, file_format: str, drop: frozenset[str], tools: ToolSet | None = None
) -> Iterator[tuple[int, Any, Any, PairRecord | None]]:
    reader = _reader(path, file_format)
    order = 0
    for loc, raw, problem in reader:
        order += 1
        if problem is not None:
            yield order, reader, loc, [(None, problem)]
            continue
        try:
            yield order, reader, loc, pair_record(raw, drop, tools)
        except _Bad as exc:
            yield order, reader, loc, exc.problems


def pairs_import(
    *,
    task: Task,
    path: Path,
    file_format: str,
    mapping: Mapping | dict | None = None,
    status: str = Example.Status.NEW,
    actor=None,
    reporter: Reporter | None = None,
    filename: str = "",
    job_id: int | None = None,
    check_only: bool = False,
) -> dict:
    """Import the pairs and comparisons of a preference file in one transaction, or none (ImportFailed naming each
    problem by line and field, up to MAX_ERRORS). Return the counts, in the shape the example import returns them
    (records, with_completion, status, kinds, ignored, kept) plus pairs and comparisons."""
    _check_status(status)
    size = _check_file(path)
    reporter = reporter or Reporter()
    drop = Mapping.of(mapping).drop
    reviewed = status == Example.Status.APPROVED
    now = timezone.now()
    pairs = comparisons = 0
    seen: dict[str, str] = {}  # external id -> where first seen (bounded by MAX_IMPORT_ROWS ids of ≤200 characters)
    max_rows = max_import_rows()
    problems = None
    try:
        with transaction.atomic():
            task, template = locked_task(task)
            batch_pairs: list[PreferencePair] = []
            batch_comparisons: list[Comparison] = []

            def flush() -> None:
                """Insert the batch, unless a problem was found (then only the ids are checked, to name them)."""
                objects = [*batch_pairs, *batch_comparisons]
                taken = _taken(task, [obj.external_id for obj in objects])
                for obj in objects:
                    if obj.external_id in taken:
                        message = f'"{_shown(obj.external_id)}" is already the id of a pair or comparison of this task'
                        problems.add(0, seen[obj.external_id], "id", message)
                if not problems.count and not check_only:
                    PreferencePair.objects.bulk_create(batch_pairs)
                    Comparison.objects.bulk_create(batch_comparisons)
                batch_pairs.clear()
                batch_comparisons.clear()

            order = 0
            tools = ToolSet.of(template)  # None unless a tools task
            for order, reader, loc, found in _records(path, file_format, drop, tools):
                if problems is None:
                    problems = _Problems(reader)
                if order > max_rows:
                    problems.add(0, reader.describe(loc), None, f"the file holds more than {max_rows:,} records, "
                                 "the import limit; split it, or raise the MAX_IMPORT_ROWS setting")  # fmt: skip
                    break
                if type(found) is list:
                    problems.add_record(order, loc, found)
                    continue
                where = reader.describe(loc)
                if found.external_id:
                    if found.external_id in seen:
                        message = f'"{_shown(found.external_id)}" repeats the id of {seen[found.external_id]}'
                        problems.add(order, where, found.id_key, message)
                        continue
                    seen[found.external_id] = where
                common = {
                    "task": task,
                    "template": template,
                    "external_id": found.external_id,
                    "instruction": found.instruction,
                    "context": found.context,
                    "input": found.input,
                    "messages": found.messages,
                    "prompt_hash": found.prompt_hash,
                }
                if found.candidates is not None:
                    batch_comparisons.append(
                        Comparison(candidate_a=found.candidates[0], candidate_b=found.candidates[1], **common)
                    )
                    comparisons += 1
                else:
                    batch_pairs.append(
                        PreferencePair(
                            chosen=found.chosen,
                            rejected=found.rejected,
                            source=Source.IMPORT,
                            reviewed=reviewed,
                            reviewed_by=actor if reviewed else None,
                            reviewed_at=now if reviewed else None,
                            created_by=actor,
                            **common,
                        )
                    )
                    pairs += 1
                if len(batch_pairs) + len(batch_comparisons) >= limits.BATCH_SIZE:
                    flush()
                    reporter.progress(Progress("insert", pairs + comparisons, reader.position, size))
            if problems is not None:
                flush()
            if problems is not None and problems.count:
                problems.raise_if_any()
            if not pairs + comparisons:
                raise ImportFailed(["The file holds no records."])
            counts = {
                "records": pairs + comparisons,
                "with_completion": pairs,
                "status": str(status),
                "kinds": {},
                "ignored": sorted(_shown(key, 100) for key in drop),
                "kept": [],
                "pairs": pairs,
                "comparisons": comparisons,
            }
            if check_only:
                transaction.set_rollback(True)
                return counts
            reporter.progress(Progress("insert", pairs + comparisons, size, size, done=True))
            reporter.finish(counts)
            if pairs:
                from .services import pair_checks_request  # services import this module's neighbours

                pair_checks_request(task=task)
            audit_record(
                task=task,
                actor=actor,
                action=AuditEvent.Action.IMPORT,
                target=_shown(filename or path.name, 200),
                detail={"pairs": pairs, "comparisons": comparisons, "status": str(status), "job": job_id},
            )
    except _Fatal as exc:
        raise ImportFailed([f"{exc.where}: {exc.message}"]) from None
    except IntegrityError as exc:
        message = f"The database refused a row because of a change made meanwhile; import again. ({exc})"
        raise ImportFailed([message]) from exc
    return counts


def _taken(task: Task, ids: list[str]) -> set[str]:
    """The ids among `ids` already used by the task's pairs or comparisons (batches of 1,000 per query)."""
    ids = [i for i in ids if i]
    taken: set[str] = set()
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for model in (PreferencePair, Comparison):
            taken.update(model.objects.filter(task=task, external_id__in=chunk).values_list("external_id", flat=True))
    return taken
