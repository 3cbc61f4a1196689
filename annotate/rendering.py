"""Render an example's fields into the training records of each export format.

A template is plain text with `{field}` placeholders for the prompt fields (instruction, context, input) and
optional sections `[[ ... ]]` that are dropped when every field inside them is empty, so that an example without
context does not carry an empty "### Context:" heading. Nothing else is interpreted: no attribute access, no
format specs, no code. Literal braces are written `{{` and `}}`; literal brackets `[[`/`]]` cannot be used.

Output is bounded: a template text may hold at most MAX_TEMPLATE_CHARS characters and MAX_TEMPLATE_PLACEHOLDERS
placeholders (checked when a template is saved, and again when an export renders through it, for templates saved
before the limits existed), and one rendered record at most MAX_RENDERED_RECORD_BYTES bytes of JSON (checked by the
preview before it renders, and by the export on each line it writes). Settings of the same names override them.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import orjson
from django.conf import settings

PROMPT_FIELDS = ("instruction", "context", "input")
CHAT_ROLES = ("system", "user", "assistant")

# A prompt format of 20,000 characters is about 5,000 tokens of fixed text around the fields; 20 placeholders let
# every field appear several times. Together with the fields' own limit (100,000 characters each) they bound what one
# record can grow to, whatever the examples hold: `{input}` 10,000 times made one record 10,000 times its input.
MAX_TEMPLATE_CHARS = 20_000
MAX_TEMPLATE_PLACEHOLDERS = 20
# 1 MiB of JSON is about 250,000 tokens: longer than the context window trainers accept, so nothing usable is refused.
MAX_RENDERED_RECORD_BYTES = 1024 * 1024
_LIMITS = {
    "MAX_TEMPLATE_CHARS": MAX_TEMPLATE_CHARS,
    "MAX_TEMPLATE_PLACEHOLDERS": MAX_TEMPLATE_PLACEHOLDERS,
    "MAX_RENDERED_RECORD_BYTES": MAX_RENDERED_RECORD_BYTES,
}
# The texts of a template that the limits apply to, with the names the messages use.
TEMPLATE_TEXTS = {
    "instruction_text": "The default instruction",
    "prompt_format": "The prompt format",
    "chat_user_format": "The chat user message",
    "alpaca_input_format": "The Alpaca input",
    "system_message": "The system message",
}


def _formats() -> dict:
    """The export formats (exports/formats): each module renders and checks its own records. Imported on first use,
    since that package builds on this module."""
    from exports.formats import FORMATS

    return FORMATS


def __getattr__(name: str):
    # EXPORT_FORMATS: the format names, in the registry's order (the template preview shows each);
    # FORMAT_TEXTS: the template text each format fills in (a system message is copied once, as it is: the record
    # limit bounds it).
    if name == "EXPORT_FORMATS":
        return tuple(_formats())
    if name == "FORMAT_TEXTS":
        return {fmt: module.TEMPLATE_TEXT for fmt, module in _formats().items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|\{|\}")
_SECTION = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)


class TemplateError(ValueError):
    pass


class RecordTooLarge(TemplateError):
    """A rendered record would be over MAX_RENDERED_RECORD_BYTES."""


def limit(name: str) -> int:
    """The limit `name` (MAX_TEMPLATE_CHARS, MAX_TEMPLATE_PLACEHOLDERS, MAX_RENDERED_RECORD_BYTES): the setting of that
    name when there is one, else this module's constant. Read at each use, so that a test or a deployment can change
    it."""
    return int(getattr(settings, name, _LIMITS[name]))


def template_limits_error(name: str, text: str) -> str | None:
    """Why the template text `name` (a key of TEMPLATE_TEXTS) is over a limit (each limit it breaks), or None.
    Linear in the text."""
    what = TEMPLATE_TEXTS[name]
    problems = []
    max_chars = limit("MAX_TEMPLATE_CHARS")
    if len(text) > max_chars:
        problems.append(
            f"{what} is {len(text):,} characters long, over the limit of {max_chars:,} characters (MAX_TEMPLATE_CHARS)."
        )
    if name not in ("instruction_text", "system_message"):  # plain text: nothing is filled in
        max_placeholders = limit("MAX_TEMPLATE_PLACEHOLDERS")
        # Counted on the raw text, so a malformed template is measured too; `{{` is a literal brace.
        count = sum(1 for match in _TOKEN.finditer(text) if match.group(1) is not None)
        if count > max_placeholders:
            problems.append(
                f"{what} has {count:,} placeholders, over the limit of {max_placeholders} "
                "(MAX_TEMPLATE_PLACEHOLDERS): each one copies a whole field into every record."
            )
    return " ".join(problems) or None


def _placeholders(text: str) -> list[str]:
    names = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if match.group(1) is None:
            raise TemplateError(
                f"unmatched '{token}' at character {match.start() + 1}; write '{token * 2}' for a literal"
            )
        name = match.group(1).strip()
        if name not in PROMPT_FIELDS:
            allowed = ", ".join("{" + f + "}" for f in PROMPT_FIELDS)
            raise TemplateError(
                f"unknown placeholder {{{match.group(1)}}} at character {match.start() + 1}; use {allowed}"
            )
        names.append(name)
    return names


@lru_cache(maxsize=256)
def required_fields(text: str) -> tuple[str, ...]:
    """The fields a prompt format uses outside its optional `[[ ... ]]` sections: an example must fill them, or its
    prompt has a hole. A malformed format requires nothing here (saving it was refused already)."""
    try:
        names = _placeholders(_SECTION.sub("", text))
    except TemplateError:
        return ()
    return tuple(dict.fromkeys(names))


def template_fields_error(text: str) -> str | None:
    """The message for a malformed template text, or None when it is well formed."""
    if text.count("[[") != text.count("]]"):
        return "optional sections are unbalanced: every '[[' needs a closing ']]'"
    if any("[[" in match.group(1) for match in _SECTION.finditer(text)) or "]]" in _SECTION.sub("", text):
        return "optional sections cannot be nested"
    try:
        _placeholders(text)
    except TemplateError as exc:
        return str(exc)
    return None


def _compile_plain(text: str) -> tuple:
    """Literal strings and field names, in order: ("Q: ", ("instruction",), "\n")."""
    parts: list = []
    position = 0
    for match in _TOKEN.finditer(text):
        parts.append(text[position : match.start()])
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        else:
            parts.append((match.group(1).strip(),))
        position = match.end()
    parts.append(text[position:])
    return tuple(part for part in parts if part != "")


@lru_cache(maxsize=256)
def _compile(text: str) -> tuple:
    """A template as a tuple of literals, (field,) and [section parts, field names] entries; parsed once per text."""
    if template_fields_error(text):
        raise TemplateError(template_fields_error(text))
    compiled: list = []
    position = 0
    for match in _SECTION.finditer(text):
        compiled.extend(_compile_plain(text[position : match.start()]))
        inner = match.group(1)
        compiled.append([_compile_plain(inner), tuple(_placeholders(inner))])
        position = match.end()
    compiled.extend(_compile_plain(text[position:]))
    return tuple(compiled)


def render_text(text: str, values: Mapping[str, str]) -> str:
    """Fill `text` with `values`; an optional section whose fields are all empty disappears."""
    return _fill(_compile(text), values)


def text_renderer(text: str) -> Callable[[Mapping[str, str]], str]:
    """render_text with `text` parsed once: values -> the filled text (an export renders each record through it)."""
    try:
        compiled = _compile(text)
    except TemplateError as exc:  # refused at each use, as render_text would be, each time a new error
        message = str(exc)

        def refuse(values: Mapping[str, str]) -> str:
            raise TemplateError(message)  # (one error raised again would keep every raising frame in its traceback)

        return refuse
    return lambda values: _fill(compiled, values)


def _fill(compiled: tuple, values: Mapping[str, str]) -> str:
    """(Plain loops, no generators: this runs once per exported record.)"""
    out: list[str] = []
    append = out.append
    get = values.get
    for part in compiled:
        if part.__class__ is str:
            append(part)
        elif part.__class__ is tuple:
            append(get(part[0]) or "")
        else:  # an optional section: kept when one of its fields has more than whitespace (or it names none)
            inner, names = part
            for name in names:
                value = get(name)
                if value and not value.isspace():
                    break
            else:
                if names:
                    continue
            for piece in inner:
                append(piece if piece.__class__ is str else (get(piece[0]) or ""))
    return "".join(out)


@dataclass(frozen=True)
class TemplateSpec:
    """The parts of a PromptTemplate that rendering needs (so previews of unsaved edits work too)."""

    prompt_format: str
    chat_user_format: str
    alpaca_input_format: str
    system_message: str = ""
    # Tools tasks (annotate/tools.py): the tool set (None for other tasks), whether a turn may call in parallel, and
    # whether every call's arguments and the tool sets of all the task's versions fit one Arrow type each (so an
    # export may write them as JSON objects and `datasets` still loads the file).
    tools: list | None = field(default=None, hash=False)
    parallel_tool_calls: bool = True
    arguments_as_objects: bool = False
    tools_as_objects: bool = True

    @classmethod
    def of(cls, template) -> "TemplateSpec":
        extra = {}
        if getattr(template, "tools", None) is not None:
            from .tool_types import arguments_agree, values_agree
            from .tools import tools_of

            tools = tools_of(template.tools)
            sets = [tools]
            if template.task_id is not None:  # every version of the task can share one export file
                texts = template.task.templates.exclude(tools=None).values_list("tools", flat=True)
                sets = [tools_of(text) for text in texts] or sets
            extra = {
                "tools": tools,
                "parallel_tool_calls": template.parallel_tool_calls,
                "arguments_as_objects": arguments_agree(sets),
                "tools_as_objects": values_agree(sets),
            }
        return cls(
            prompt_format=template.prompt_format,
            chat_user_format=template.chat_user_format,
            alpaca_input_format=template.alpaca_input_format,
            system_message=template.effective_system_message(),
            **extra,
        )


def record_renderer(spec: TemplateSpec, export_format: str) -> Callable[..., dict]:
    """A function (fields, completion, messages) -> the training record of one example, exactly in the shape DESIGN.md
    fixes for `export_format` (its module in exports/formats renders it). Made once per template and format, so that
    an export of a million records does the dispatch and the fixed parts (the system turn) once."""
    module = _formats().get(export_format)
    if module is None:
        raise TemplateError(f"unknown export format {export_format!r}; use one of {', '.join(_formats())}")
    return module.renderer(spec)


def spec_limits_error(spec: TemplateSpec, export_format: str) -> str | None:
    """Why the text of `spec` that `export_format` fills in is over a limit, or None."""
    name = _formats()[export_format].TEMPLATE_TEXT
    return template_limits_error(name, getattr(spec, name))


def rendered_length(text: str, values: Mapping[str, str]) -> int:
    """The number of characters render_text(text, values) returns, worked out without building it (a sum over the
    template's parts), so that a caller can refuse a huge result before paying for it."""
    total = 0
    for part in _compile(text):
        if part.__class__ is str:
            total += len(part)
        elif part.__class__ is tuple:
            total += len(values.get(part[0]) or "")
        else:
            inner, names = part
            if not names or any((values.get(name) or "").strip() for name in names):
                total += sum(len(p) if p.__class__ is str else len(values.get(p[0]) or "") for p in inner)
    return total


def _too_large(export_format: str, size: int, max_bytes: int, *, at_least: bool = False) -> RecordTooLarge:
    return RecordTooLarge(
        f"The {export_format} record would be {'at least ' if at_least else ''}{size:,} bytes, over the limit of "
        f"{max_bytes:,} bytes (MAX_RENDERED_RECORD_BYTES); shorten the template or the fields"
    )


def render_record(
    spec: TemplateSpec,
    export_format: str,
    *,
    fields: Mapping[str, str],
    completion: str,
    messages: list[dict] | None = None,
) -> dict:
    """The training record of one example, exactly in the shape DESIGN.md fixes for `export_format`."""
    return record_renderer(spec, export_format)(fields, completion, messages)


def preview_record(
    spec: TemplateSpec,
    export_format: str,
    *,
    fields: Mapping[str, str],
    completion: str,
    messages: list[dict] | None = None,
) -> dict:
    """render_record for text a user typed just now (the template preview). Raise RecordTooLarge when the record's
    JSON would be over MAX_RENDERED_RECORD_BYTES: decided before rendering when the texts alone are over it (a
    character is at least one byte), so the work stays bounded whatever the fields hold."""
    max_bytes = limit("MAX_RENDERED_RECORD_BYTES")
    chars = len(completion) + sum(len(str(m.get("content", ""))) for m in messages or ())
    module = _formats().get(export_format)
    if module is not None:
        chars += module.min_chars(spec, fields)
    if chars > max_bytes:
        raise _too_large(export_format, chars, max_bytes, at_least=True)
    record = render_record(spec, export_format, fields=fields, completion=completion, messages=messages)
    size = len(orjson.dumps(record))
    if size > max_bytes:
        raise _too_large(export_format, size, max_bytes)
    return record


def render_prompt(spec: TemplateSpec, *, fields: Mapping[str, str]) -> str:
    """The prompt as the model will see it in a prompt/completion export."""
    return render_text(spec.prompt_format, fields)


# Presets of DESIGN.md: a starting point for a task's first template.
PRESETS: dict[str, dict] = {
    "qa-context": {
        "title": "Question answering over context",
        "instruction_text": "Answer the question using only the context.",
        "fields": {
            "instruction": {"label": "Question", "help": "The user's question."},
            "context": {"label": "Context", "help": "The passage the answer must come from."},
            "input": {"label": "Input", "help": "Unused for this preset."},
            "output": {"label": "Answer", "help": "A short answer grounded in the context, or say it is not there."},
        },
        "prompt_format": "[[### Context:\n{context}\n\n]]### Question:\n{instruction}\n\n### Answer:\n",
        "chat_user_format": "[[Context:\n{context}\n\n]]Question: {instruction}",
        "alpaca_input_format": "{context}",
    },
    "classification": {
        "title": "Classification",
        "instruction_text": "Classify the text into exactly one of the labels.",
        "fields": {
            "instruction": {"label": "Instruction", "help": "The classification to make."},
            "context": {"label": "Context", "help": "Optional background."},
            "input": {"label": "Text", "help": "The text to classify."},
            "output": {"label": "Label", "help": "Exactly one label of the task's label set."},
        },
        "prompt_format": "### Instruction:\n{instruction}\n\n### Text:\n{input}\n\n### Label:\n",
        "chat_user_format": "{instruction}\n\nText: {input}",
        "alpaca_input_format": "{input}",
    },
    "summarisation": {
        "title": "Summarisation",
        "instruction_text": "Summarise the text in two sentences.",
        "fields": {
            "instruction": {"label": "Instruction", "help": "How to summarise (length, audience)."},
            "context": {"label": "Context", "help": "Optional background."},
            "input": {"label": "Text", "help": "The text to summarise."},
            "output": {"label": "Summary", "help": "The ideal summary."},
        },
        "prompt_format": "### Instruction:\n{instruction}\n\n### Text:\n{input}\n\n### Summary:\n",
        "chat_user_format": "{instruction}\n\n{input}",
        "alpaca_input_format": "{input}",
    },
    "extraction-json": {
        "title": "Extraction to JSON",
        "instruction_text": "Extract the fields as JSON.",
        "fields": {
            "instruction": {"label": "Instruction", "help": "What to extract."},
            "context": {"label": "Context", "help": "Optional background."},
            "input": {"label": "Document", "help": "The text to extract from."},
            "output": {"label": "JSON", "help": "A JSON object matching the task's schema."},
        },
        "prompt_format": "### Instruction:\n{instruction}\n\n### Document:\n{input}\n\n### JSON:\n",
        "chat_user_format": "{instruction}\n\n{input}",
        "alpaca_input_format": "{input}",
    },
    "chat-persona": {
        "title": "Chat persona",
        "instruction_text": "",
        "fields": {
            "instruction": {"label": "User message", "help": "What the user says in this turn."},
            "context": {"label": "Context", "help": "Optional facts the assistant may use."},
            "input": {"label": "Input", "help": "Unused for this preset."},
            "output": {"label": "Assistant reply", "help": "The reply in the persona's voice."},
        },
        "prompt_format": "[[{context}\n\n]]User: {instruction}\nAssistant:",
        "chat_user_format": "[[{context}\n\n]]{instruction}",
        "alpaca_input_format": "{context}",
    },
}
