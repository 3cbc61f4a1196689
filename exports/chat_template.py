"""A model's chat template, rendered the way the trainers render it, with bounded work.

The trainers turn a conversation into text with the tokenizer's `chat_template`: a Jinja template run in jinja2's
ImmutableSandboxedEnvironment (trim_blocks, lstrip_blocks, the loop controls), given `messages`, `tools`,
`add_generation_prompt` and the special tokens of tokenizer_config.json, with the helpers `raise_exception`,
`strftime_now` and a `tojson` filter. Templates mark what a model is trained on with `{% generation %}` …
`{% endgeneration %}`: the assistant-only loss masks everything else. The same contract is kept here.

A template is code a user uploaded, so on top of the sandbox (no attributes of internals, no mutation of lists and
dicts) every render has limits that fail with a ChatTemplateError naming the limit:
- MAX_STEPS loop iterations plus calls (macros, methods, loop() recursion), counted by a filter wrapped around
  every `{% for %}` iterable at compile time and by the sandbox's call hook; and a wall-clock DEADLINE checked there;
- MAX_OUTPUT_CHARS of output, and every string the template builds (`~`, `+`, `*`, `%`, join, replace) capped at
  the same size before it is built;
- only the string and container methods a template reads with (strip, split, startswith, items, get, …); filters
  that pad or repeat by a number (center, indent, wordwrap, batch, slice, lipsum, random) are gone.
"""

import json
import re
import secrets
import time
from datetime import datetime
from functools import wraps

from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEMPLATE_CHARS = 200_000  # the largest templates in use (tool-calling models) are about 20,000 characters
MAX_OUTPUT_CHARS = 2_000_000  # per render, and per string built inside one
MAX_STEPS = 200_000  # loop iterations + calls per render
DEADLINE_SECONDS = 2.0  # per render
MAX_RANGE = 10_000
MAX_JSON_INDENT = 16

_SAFE_METHODS = {
    str: frozenset(
        [
            "strip",
            "lstrip",
            "rstrip",
            "split",
            "rsplit",
            "splitlines",
            "startswith",
            "endswith",
            "lower",
            "upper",
            "title",
            "capitalize",
            "casefold",
            "swapcase",
            "count",
            "find",
            "rfind",
            "index",
            "rindex",
            "isdigit",
            "isalpha",
            "isalnum",
            "isspace",
            "isupper",
            "islower",
            "isnumeric",
            "removeprefix",
            "removesuffix",
            "partition",
            "rpartition",
            "replace",
            "join",
        ]
    ),
    dict: frozenset(["get", "items", "keys", "values"]),
    list: frozenset(["index", "count"]),
    tuple: frozenset(["index", "count"]),
}
_REMOVED_FILTERS = ("center", "indent", "wordwrap", "batch", "slice", "random", "urlize", "format", "filesizeformat")
_PERCENT_WIDTH = re.compile(r"%[-+ #0]*(\*|[0-9]{5,})|%[-+ #0]*[0-9]*\.(\*|[0-9]{5,})")
GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


class ChatTemplateError(Exception):
    """The chat template cannot be used, or failed on one conversation: the message says why."""


class _Budget:
    __slots__ = ("steps", "deadline")

    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + DEADLINE_SECONDS

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise ChatTemplateError(f"the template did more than {MAX_STEPS:,} loop steps and calls (MAX_STEPS)")
        if time.monotonic() > self.deadline:
            raise ChatTemplateError(f"the template ran longer than {DEADLINE_SECONDS} s (DEADLINE_SECONDS)")


def _weight(value, limit: int = MAX_OUTPUT_CHARS) -> int:
    """About how many characters `value` is as text (strings, numbers, nested containers, shared parts counted each
    time they appear), counted up to just past `limit`: the cost of a check is bounded by the limit itself."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, int):
            total += 1 + item.bit_length() // 3
        elif isinstance(item, list | tuple):
            total += 1
            stack.extend(item)
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 1
    return total


def _check_size(value, extra: int = 0):
    weight = _weight(value) + extra
    if weight > MAX_OUTPUT_CHARS:
        raise ChatTemplateError(f"the template built a value of over {MAX_OUTPUT_CHARS:,} characters")
    return value


class _Generation(Extension):
    """`{% generation %}…{% endgeneration %}`: what the model is trained on, wrapped in markers found after render."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_mark"), [], [], body).set_lineno(lineno)

    def _mark(self, caller) -> str:
        start, end = self.environment.markers
        return f"{start}{caller()}{end}"


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, loopcontrols])
        self.budget = _Budget()
        # Random per template: user text cannot forge a marker it never saw.
        token = secrets.token_hex(8)
        self.markers = (f"\ue000{token}<", f"\ue000{token}>")
        for name in _REMOVED_FILTERS:
            self.filters.pop(name, None)
        self.filters["tojson"] = _tojson
        self.filters["_steps"] = self._steps
        self.filters["_bounded"] = _check_size
        for name in ("join", "string", "list", "map", "sort", "unique", "reverse", "trim"):
            self.filters[name] = _bounded_filter(self.filters[name])
        self.filters["replace"] = _replace
        self.globals.pop("lipsum", None)
        self.globals.update(range=self._range, raise_exception=_raise, strftime_now=_strftime_now)

    def _steps(self, iterable):
        """Wrapped around every loop's iterable: each item is a step of the budget."""
        budget = self.budget
        if iterable is None or isinstance(iterable, int | float):
            return iterable  # Jinja's own error for a non-iterable
        for item in iterable:
            budget.step()
            yield item

    def _range(self, *args):
        values = range(*args)
        if len(values) > MAX_RANGE:
            raise ChatTemplateError(f"range() of {len(values):,} items, over {MAX_RANGE:,} (MAX_RANGE)")
        return values

    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_steps", [], [], None, None, lineno=loop.lineno)

        # Bound the result of each `~` (a Concat node): wrap it, through its parent, in a size check.
        def bounded(value):
            return nodes.Filter(value, "_bounded", [], [], None, None) if isinstance(value, nodes.Concat) else value

        for parent in list(tree.find_all(nodes.Node)):
            if isinstance(parent, nodes.Filter) and parent.name == "_bounded":
                continue
            for field in parent.fields:
                value = getattr(parent, field, None)
                if isinstance(value, list):
                    value[:] = [bounded(item) for item in value]
                else:
                    setattr(parent, field, bounded(value))
        return tree

    def call_binop(self, context, operator, left, right):
        if operator == "*" and isinstance(left, str | list | tuple) != isinstance(right, str | list | tuple):
            size, times = (_weight(left), right) if isinstance(left, str | list | tuple) else (_weight(right), left)
            if isinstance(times, int) and size * times > MAX_OUTPUT_CHARS:
                raise ChatTemplateError(f"repeating {size:,} items {times:,} times is over {MAX_OUTPUT_CHARS:,}")
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise ChatTemplateError(f"a power of {right} is over the limit of 64")
        if operator == "%" and isinstance(left, str) and _PERCENT_WIDTH.search(left):
            raise ChatTemplateError("a % format with a width or precision of 10,000 or more")
        return _check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (the sandbox's own signature)
        __self.budget.step()
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(target, "__self__", None)
        allowed = _SAFE_METHODS.get(type(owner))
        name = getattr(target, "__name__", "")
        if allowed is not None and name not in allowed:
            raise SecurityError(f"the method {type(owner).__name__}.{name}() is not allowed in a template")
        if allowed is not None and name == "replace" and len(args) >= 2 and isinstance(args[0], str):
            count = args[0].count(args[1]) if args[1] else len(args[0])
            if isinstance(args[1], str) and len(owner) + count * len(args[1]) > MAX_OUTPUT_CHARS:
                raise ChatTemplateError("a replace() whose result would be over the output limit")
        return _check_size(super().call(__context, __obj, *args, **kwargs))


def _bounded_filter(function):
    """A built-in filter whose result is size-checked (its pass-context marker kept)."""

    @wraps(function)
    def bounded(*args, **kwargs):
        values = [a for a in args if not hasattr(a, "environment")]  # the eval context, when passed, aside
        if values and isinstance(values[0], list | tuple):  # a join's separator between every item
            _check_size(values[0], extra=len(values[0]) * len(str(values[1] if len(values) > 1 else "")))
        return _check_size(function(*args, **kwargs))

    return bounded


def _replace(value, old, new, count=None) -> str:
    value, old, new = str(value), str(old), str(new)
    times = value.count(old) if old else len(value) + 1
    if isinstance(count, int):
        times = min(times, max(count, 0))
    if len(value) + times * len(new) > MAX_OUTPUT_CHARS:
        raise ChatTemplateError(f"a replace() whose result would be over {MAX_OUTPUT_CHARS:,} characters")
    return value.replace(old, new, count if isinstance(count, int) else -1)


def _raise(message) -> None:
    raise ChatTemplateError(f"the template raised: {str(message)[:500]}")


def _strftime_now(date_format: str) -> str:
    return datetime.now().strftime(str(date_format)[:100])


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    if isinstance(indent, int) and indent > MAX_JSON_INDENT:
        raise ChatTemplateError(f"tojson indent {indent} is over {MAX_JSON_INDENT}")
    return _check_size(
        json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    )


def special_token(config: dict, name: str) -> str | None:
    """A special token of tokenizer_config.json: a string, or an added token's object with its `content`."""
    value = config.get(name)
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class ChatTemplate:
    """One compiled chat template. `render(messages)` -> (text, the (start, end) spans trained on)."""

    def __init__(self, source: str, config: dict) -> None:
        if not isinstance(source, str) or not source.strip():
            raise ChatTemplateError("the chat template is empty")
        if len(source) > MAX_TEMPLATE_CHARS:
            raise ChatTemplateError(
                f"the chat template is {len(source):,} characters, over the limit of {MAX_TEMPLATE_CHARS:,}"
            )
        self.has_generation = bool(GENERATION_TAG.search(source))
        self.env = _Sandbox()
        try:
            self.template = self.env.from_string(source)
        except TemplateSyntaxError as exc:
            raise ChatTemplateError(f"the chat template does not compile: line {exc.lineno}: {exc.message}") from None
        except RecursionError:
            raise ChatTemplateError("the chat template nests too deeply to compile") from None
        self.tokens = {
            name: special_token(config, name)
            for name in ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")
        }
        start, end = self.env.markers
        self._marker = re.compile(re.escape(start) + "|" + re.escape(end))

    def render(
        self, messages: list, *, tools: list | None = None, add_generation_prompt: bool = False
    ) -> tuple[str, list[tuple[int, int]]]:
        """The conversation as the trainer's text, and the character spans inside `{% generation %}` blocks. Raise
        ChatTemplateError (a limit, a sandbox refusal, the template's own raise_exception, any error of the run)."""
        self.env.budget = _Budget()
        parts = []
        size = 0
        try:
            variables = {"messages": messages, "tools": tools, "documents": None, **self.tokens}
            for chunk in self.template.generate(add_generation_prompt=add_generation_prompt, **variables):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise ChatTemplateError(f"the template wrote more than {MAX_OUTPUT_CHARS:,} characters")
                parts.append(chunk)
        except ChatTemplateError:
            raise
        except SecurityError as exc:
            raise ChatTemplateError(f"the sandbox refused: {exc}") from None
        except RecursionError:
            raise ChatTemplateError("the template recursed too deeply") from None
        except (TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError) as exc:
            raise ChatTemplateError(f"the template failed: {type(exc).__name__}: {exc}") from None
        except MemoryError:
            raise ChatTemplateError("the template ran out of memory") from None
        text = "".join(parts)
        if not self.has_generation:
            return text, []
        return self._spans(text)

    def _spans(self, text: str) -> tuple[str, list[tuple[int, int]]]:
        start_marker = self.env.markers[0]
        out: list[str] = []
        spans: list[tuple[int, int]] = []
        length = depth = position = 0
        opened = 0
        for match in self._marker.finditer(text):
            piece = text[position : match.start()]
            out.append(piece)
            length += len(piece)
            position = match.end()
            if match.group() == start_marker:
                if depth == 0:
                    opened = length
                depth += 1
            elif depth:
                depth -= 1
                if depth == 0 and length > opened:
                    spans.append((opened, length))
        out.append(text[position:])
        return "".join(out), spans
