"""Trainer preflight: each exported example rendered through the model's chat template and counted with its tokenizer.

A lead uploads the tokenizer of the model they will train (tokenizer.json, read by the `tokenizers` library, and
tokenizer_config.json with its `chat_template`); both are checked here and kept on the task (TaskTokenizer). An
export then feeds every record's conversation (TRL's conversational `messages`, as the trainer would apply the
template) to a Preflight, which renders it in the sandbox of exports/chat_template.py and counts its tokens in
batches (`encode_batch` runs in parallel in Rust). The report says, per split, the examples and tokens, the examples
longer than the export's maximum length (TRL's SFTConfig `max_length`, default 1024: those are truncated), and the
share of tokens trained on: the `{% generation %}` spans when the template marks them (what an assistant-only loss
trains on), else the assistant messages' own text, with a warning that the template cannot mask the prompt.
"""

import json
import re
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Mapping
from hashlib import sha256
from threading import Lock

import orjson
from django.core.exceptions import ValidationError
from django.db import transaction
from tokenizers import Tokenizer

from annotate.audit import Action, audit_record

from .chat_template import ChatTemplate, ChatTemplateError
from .formats._rules import chat_turns
from .formats._tools import call_names, tool_turns
from .models import TaskTokenizer
from .splits import SPLITS

MAX_TOKENIZER_BYTES = 64 * 1024**2  # the largest vocabularies in use (256k tokens) write about 35 MB
MAX_CONFIG_BYTES = 4 * 1024**2  # chat templates are at most tens of KB; added-token tables can be a few MB
DEFAULT_MAX_LENGTH = 1024  # TRL's SFTConfig max_length default
MAX_MAX_LENGTH = 10_000_000
MAX_OVER_LISTED = 200  # the over-length examples kept on the row; the counts count them all
BATCH = 512  # conversations per encode_batch
SAMPLE = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi! How can I help?"},
]
# A tool conversation in the shape `conversation` passes, for templates that only render with `tools` (the tool
# templates of some models raise without them): a template is usable when either sample renders.
SAMPLE_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
SAMPLE_TOOL_CALL = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]},
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18 °C"},
    {"role": "assistant", "content": "It is 18 °C in Paris."},
]  # fmt: skip
NO_MASK_WARNING = (
    "The chat template has no {% generation %} markers: a trainer cannot mask the prompt from the loss with it "
    "(TRL's assistant_only_loss needs them), so it trains on every token unless the data is prompt-completion."
)


class PreflightFailed(Exception):
    """The chat template failed on an example; the message names it."""


def _read(upload, field: str, name: str, limit: int) -> bytes:
    if upload is None:
        raise ValidationError({field: f"Choose the {name} file."})
    if upload.size > limit:
        raise ValidationError({field: f"{name} is {upload.size:,} bytes, over the limit of {limit:,} bytes."})
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise ValidationError({field: f"{name} is over the limit of {limit:,} bytes."})
    return data


def _repeated_group(pattern: str) -> bool:
    """Whether a regex repeats (`*`, `+`, `{n,}`) a group that itself repeats or alternates, as `(a+)+` or `(a|a)*`:
    the shape that backtracks exponentially. The tokenizers of real models (GPT-2, Llama 3, Qwen) have none."""
    stack = [False]  # per open group: whether it holds a quantifier or an alternation
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "\\":
            position += 2
            continue
        if char == "[":  # a character class: skip to its end
            position += 2 if pattern[position + 1 : position + 2] == "]" else 1
            while position < len(pattern) and pattern[position] != "]":
                position += 2 if pattern[position] == "\\" else 1
        elif char == "(":
            stack.append(False)
        elif char == ")" and len(stack) > 1:
            inner = stack.pop()
            following = pattern[position + 1 : position + 8]
            repeats = following[:1] in ("*", "+") or re.match(r"\{[0-9]*,", following) is not None
            if repeats and inner:
                return True
            stack[-1] = stack[-1] or inner or repeats
        elif char in "*+|{" or (char == "?" and pattern[position - 1] != "("):
            stack[-1] = True
        position += 1
    return False


def _patterns(node) -> list[str]:
    """The regex patterns (`{"Regex": …}`) anywhere in a tokenizer.json (normalizers, pre-tokenizers)."""
    found, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("Regex"), str):
                found.append(item["Regex"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def tokenizer_check(tokenizer_bytes: bytes, config_bytes: bytes) -> tuple[Tokenizer, dict, ChatTemplate]:
    """Parse both files and try the chat template on a small conversation. Raise ValidationError naming the file
    and what is wrong with it."""
    field = "tokenizer"
    try:
        text = tokenizer_bytes.decode()
        tokenizer = Tokenizer.from_str(text)
    except (UnicodeDecodeError, Exception) as exc:  # tokenizers raises a plain Exception for a bad file
        raise ValidationError({field: f"tokenizer.json could not be read as a tokenizer: {str(exc)[:300]}"}) from None
    for pattern in _patterns(orjson.loads(tokenizer_bytes)):
        if _repeated_group(pattern):
            raise ValidationError(
                {
                    field: f"tokenizer.json has a regex that repeats a repeated group ({pattern[:80]!r}): it can take "
                    "exponential time on some texts, so it is refused."
                }
            )
    field = "config"
    try:
        config = orjson.loads(config_bytes)
    except orjson.JSONDecodeError as exc:
        raise ValidationError({field: f"tokenizer_config.json is not JSON: {exc}"}) from None
    if not isinstance(config, dict):
        raise ValidationError({field: "tokenizer_config.json must hold a JSON object."})
    source = chat_template_source(config)
    if source is None:
        raise ValidationError(
            {field: "tokenizer_config.json has no chat_template (a string, or a list with one named “default”)."}
        )
    try:
        template = ChatTemplate(source, config)
        try:
            template.render(SAMPLE)
        except ChatTemplateError as plain:
            try:
                template.render(SAMPLE_TOOL_CALL, tools=SAMPLE_TOOLS)
            except ChatTemplateError:
                raise plain from None
    except ChatTemplateError as exc:
        raise ValidationError({field: f"The chat template cannot be used: {exc}."}) from None
    return tokenizer, config, template


def chat_template_source(config: dict) -> str | None:
    """The chat template of a tokenizer_config.json: a string, or among named ones (a list) the "default"."""
    value = config.get("chat_template")
    if isinstance(value, list):
        named = {item.get("name"): item.get("template") for item in value if isinstance(item, dict)}
        value = named.get("default")
    return value if isinstance(value, str) and value.strip() else None


@transaction.atomic
def tokenizer_set(*, task, tokenizer_file, config_file, user=None) -> TaskTokenizer:
    """Keep the task's tokenizer (replacing the one it had). Raise ValidationError for a missing or oversized file,
    one that does not parse, or a chat template that is missing or fails; then nothing changes."""
    tokenizer_bytes = _read(tokenizer_file, "tokenizer", "tokenizer.json", MAX_TOKENIZER_BYTES)
    config_bytes = _read(config_file, "config", "tokenizer_config.json", MAX_CONFIG_BYTES)
    tokenizer, config, template = tokenizer_check(tokenizer_bytes, config_bytes)
    name = config.get("name_or_path") or getattr(tokenizer_file, "name", "") or "tokenizer.json"
    row, _ = TaskTokenizer.objects.update_or_create(
        task=task,
        defaults={
            "name": str(name)[:200],
            "tokenizer_json": tokenizer_bytes.decode(),
            "config_json": config_bytes.decode(),
            "sha256": sha256(tokenizer_bytes + config_bytes).hexdigest(),
            "vocab_size": tokenizer.get_vocab_size(with_added_tokens=True),
            "has_generation": template.has_generation,
            "uploaded_by": user,
        },
    )
    audit_record(
        task=task,
        actor=user,
        action=Action.SETTINGS_CHANGED,
        target="tokenizer",
        detail={"tokenizer": row.name, "sha256": row.sha256, "vocab_size": row.vocab_size},
    )
    return row


@transaction.atomic
def tokenizer_remove(*, task, user=None) -> bool:
    """Forget the task's tokenizer: exports go back to estimates. False when it had none. Raises nothing."""
    deleted, _ = TaskTokenizer.objects.filter(task=task).delete()
    if deleted:
        audit_record(task=task, actor=user, action=Action.SETTINGS_CHANGED, target="tokenizer", detail={"removed": 1})
    return bool(deleted)


# (fields, completion, prior turns) -> (the messages, the `tools` given to the chat template: None outside tools tasks)
Conversation = Callable[[Mapping[str, str], str, list | None], tuple[list[dict], list | None]]


def conversation(spec) -> Conversation:
    """How a trainer hands an example of this template version to the chat template: TRL's conversational messages,
    and for a tools task the tool set as `tools` with the calls and results in the shape transformers documents for
    `apply_chat_template` ("Tool use" in its chat templating guide; TRL and Axolotl pass the same): the tool set as
    OpenAI function definitions, an assistant turn's `tool_calls` as `{"id", "type": "function", "function": {"name",
    "arguments": <an object, not a JSON string>}}` (its `content` left out when it has no text, as the guide shows), and
    each result as `{"role": "tool", "tool_call_id", "name", "content"}` (some templates read the id, others the name).
    Made once per template version."""
    if spec.tools is None:
        turns = chat_turns(spec)
        return lambda fields, completion, prior: (turns(fields, completion, prior), None)
    tool_conversation = tool_turns(spec)
    tools = spec.tools

    def messages(fields: Mapping[str, str], completion: str, prior: list | None) -> tuple[list[dict], list | None]:
        system, turns = tool_conversation(fields, completion, prior)
        names = call_names(turns)
        out: list[dict] = [{"role": "system", "content": system}] if system else []
        for turn in turns:
            if turn["role"] == "tool":
                call_id = turn["tool_call_id"]
                out.append({"role": "tool", "tool_call_id": call_id, "name": names.get(call_id, ""),
                            "content": turn["content"]})  # fmt: skip
            elif turn.get("tool_calls"):
                message: dict = {"role": "assistant", **({"content": turn["content"]} if turn["content"] else {})}
                message["tool_calls"] = [
                    {"id": call["id"], "type": "function",
                     "function": {"name": call["name"], "arguments": call["arguments"]}}
                    for call in turn["tool_calls"]
                ]  # fmt: skip
                out.append(message)
            else:
                out.append({"role": turn["role"], "content": turn["content"]})
        return out, tools

    return messages


def _trained(starts: list[int], spans: list[tuple[int, int]]) -> int:
    """Tokens whose first character lies inside one of `spans` (sorted, disjoint)."""
    return sum(bisect_left(starts, end) - bisect_left(starts, start) for start, end in spans)


def _content_spans(text: str, messages: list) -> list[tuple[int, int]]:
    """Without markers: where each assistant message's text appears in the rendered conversation, in order, and each
    of its calls: from the function's name to the end of its arguments as JSON (what most tool templates write, with
    `tojson`); a call whose arguments are not found in the text is not counted."""
    spans = []
    position = 0
    for message in messages:
        if message.get("role") != "assistant":
            continue
        content = message.get("content")
        content = content.strip() if isinstance(content, str) else ""
        if content:
            found = text.find(content, position)  # stripped: templates often trim the content
            if found >= 0:
                spans.append((found, found + len(content)))
                position = found + len(content)
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            name, arguments = function.get("name") or "", function.get("arguments")
            written = json.dumps(arguments, ensure_ascii=False) if not isinstance(arguments, str) else arguments
            found = text.find(written, position)
            if found < 0:
                continue
            named = text.rfind(name, position, found) if name else -1  # the name is written before the arguments
            spans.append((named if named >= 0 else found, found + len(written)))
            position = found + len(written)
    return spans


class Preflight:
    """Renders and counts the conversations of one export; `add` them in order, then `finish` for the report."""

    def __init__(self, row: TaskTokenizer, *, max_length: int) -> None:
        self.tokenizer = Tokenizer.from_str(row.tokenizer_json)
        config = orjson.loads(row.config_json)
        self.template = ChatTemplate(chat_template_source(config), config)
        self.name = row.name
        self.sha256 = row.sha256
        self.max_length = max_length
        self.pending: list[tuple[int, str, str, str, list]] = []
        self.splits: dict[str, dict] = {}
        self.over: list[dict] = []
        self.over_count = 0
        self.turns: dict = {}

    def add(self, pk: int, uuid, split: str, spec, fields: dict, completion: str, prior: list | None) -> None:
        """Render one example's conversation through its template version `spec` and the chat template (raise
        PreflightFailed naming the example); it is counted at the next full batch."""
        turns = self.turns.get(id(spec))
        if turns is None:
            turns = self.turns[id(spec)] = (spec, conversation(spec))  # the spec is kept, so its id stays its own
        try:
            messages, tools = turns[1](fields, completion, prior)
            text, spans = self.template.render(messages, tools=tools)
        except (KeyError, TypeError, ValueError) as exc:  # ValueError: a stored call's arguments that are not JSON
            raise PreflightFailed(f"Trainer preflight: example {pk} ({uuid}) has malformed turns: {exc}") from None
        except ChatTemplateError as exc:
            raise PreflightFailed(
                f"Trainer preflight: the chat template of {self.name} failed on example {pk} ({uuid}): {exc}. "
                "Nothing was written. Fix the template or the example, or remove the tokenizer to export without "
                "the preflight."
            ) from None
        if not self.template.has_generation:
            spans = _content_spans(text, messages)
        self.pending.append((pk, str(uuid), split, text, spans))
        if len(self.pending) >= BATCH:
            self._count()

    def _count(self) -> None:
        encodings = self.tokenizer.encode_batch([item[3] for item in self.pending], add_special_tokens=False)
        for (pk, uuid, split, _, spans), encoding in zip(self.pending, encodings, strict=True):
            tokens = len(encoding.ids)
            starts = [start for start, _ in encoding.offsets] if spans else []
            tally = self.splits.setdefault(split, {"examples": 0, "tokens": 0, "trained": 0, "longest": 0, "over": 0})
            tally["examples"] += 1
            tally["tokens"] += tokens
            tally["trained"] += _trained(starts, spans)
            tally["longest"] = max(tally["longest"], tokens)
            if tokens > self.max_length:
                tally["over"] += 1
                self.over_count += 1
                if len(self.over) < MAX_OVER_LISTED:
                    self.over.append({"id": pk, "uuid": uuid, "split": split, "tokens": tokens})
        self.pending.clear()

    def finish(self) -> dict:
        """The report stored on the export, written into its manifest and shown on its card."""
        if self.pending:
            self._count()
        tokens = sum(tally["tokens"] for tally in self.splits.values())
        trained = sum(tally["trained"] for tally in self.splits.values())
        return {
            "tokenizer": self.name,
            "tokenizer_sha256": self.sha256,
            "max_length": self.max_length,
            "splits": {split: self.splits[split] for split in SPLITS if split in self.splits},
            "tokens": tokens,
            "trained_tokens": trained,
            "trained_share": round(trained / tokens, 4) if tokens else 0.0,
            "masks_prompt": self.template.has_generation,
            "trained_on": "the template's {% generation %} spans"
            if self.template.has_generation
            else "the assistant messages' text (the template has no {% generation %} markers)",
            "warning": "" if self.template.has_generation else NO_MASK_WARNING,
            "over_length": self.over_count,
            "over_length_examples": self.over,
        }


def preflight_lines(report: dict) -> list[str]:
    """The report in plain sentences (the card and the command)."""
    if not report:
        return []
    lines = [
        f"Counted with the tokenizer and chat template of {report['tokenizer']} (exact, not an estimate).",
        *(
            f"{split}: {tally['examples']:,} examples, {tally['tokens']:,} tokens, longest {tally['longest']:,}"
            for split, tally in report["splits"].items()
        ),
        f"Trained on: {report['trained_share']:.1%} of the tokens ({report['trained_on']}).",
        f"Longer than {report['max_length']:,} tokens (truncated by the trainer): {report['over_length']:,}.",
    ]
    if report["warning"]:
        lines.append(f"Warning: {report['warning']}")
    return lines


class TokenCounter:
    """Exact counts for one example at a time (the editor's counts line): a task's tokenizer and chat template, loaded
    once per process and tokenizer (`token_counter`). A lock keeps one render at a time per template."""

    def __init__(self, row: TaskTokenizer) -> None:
        self.name = row.name
        self.tokenizer = Tokenizer.from_str(row.tokenizer_json)
        config = orjson.loads(row.config_json)
        self.template = ChatTemplate(chat_template_source(config), config)
        self.lock = Lock()

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def conversation(self, messages: list, tools: list | None = None) -> int | None:
        """Tokens of the conversation (and tool set) as the trainer renders it; None when the template fails on it."""
        try:
            with self.lock:
                text, _ = self.template.render(messages, tools=tools)
        except ChatTemplateError:
            return None
        return self.count(text)


_COUNTERS: "OrderedDict[str, TokenCounter]" = OrderedDict()
_COUNTERS_KEPT = 4  # tokenizers held per process (a large one is some tens of MB in memory)
_COUNTERS_LOCK = Lock()


def token_counter(task) -> TokenCounter | None:
    """The task's token counter, or None when it has no tokenizer: one indexed query, and the files are read only
    the first time this process sees this tokenizer."""
    head = TaskTokenizer.objects.filter(task=task).values_list("pk", "sha256").first()
    if head is None:
        return None
    pk, digest = head
    with _COUNTERS_LOCK:
        counter = _COUNTERS.get(digest)
        if counter is not None:
            _COUNTERS.move_to_end(digest)
            return counter
    row = TaskTokenizer.objects.filter(pk=pk).first()
    if row is None:
        return None
    counter = TokenCounter(row)
    with _COUNTERS_LOCK:
        _COUNTERS[digest] = counter
        while len(_COUNTERS) > _COUNTERS_KEPT:
            _COUNTERS.popitem(last=False)
    return counter
