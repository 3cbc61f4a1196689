"""The check registry, the result shape, and the checks of one example (run on every autosave, so they stay cheap).

Thresholds are named constants here so a reviewer can read what triggers a warning without reading code.
"""

import difflib
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

import orjson

from .. import schemas
from .longest_run import LongestRun
from .text import _WORD, fold

TEXT, JSON, LABEL, CHAT, TOOLS = "text", "json", "label", "chat", "tools"
CHAT_ROLES = ("system", "user", "assistant")
PROMPT_FIELDS = ("instruction", "context", "input")
FIELD_NAMES = {"instruction": "the instruction", "context": "the context", "input": "the input"}

# Answer leak: a run of this many consecutive completion words found in one prompt field is a leak.
LEAK_RUN_WORDS = 8
# A shorter completion leaks when this share of its words appear as one run in a field ...
LEAK_SHORT_SHARE = 0.6
# ... provided the run is at least this long, and the completion has at least this many words: so "Yes", or
# "The answer is 42" next to a prompt containing "the answer is", never counts.
LEAK_SHORT_MIN_RUN = 4
LEAK_SHORT_MIN_WORDS = 4
# A completion equal to a whole field is a copy from this many words on (any length in a label task).
_COPY_MIN_WORDS = 2
# The cheap pre-test probes runs of this many words before the exact longest-run search.
_LEAK_PROBE_WORDS = 4
# How much of a leaked run a message quotes.
QUOTE_CHARS = 80

# A text task's completion with fewer words than this is "short".
SHORT_MIN_WORDS = 3
# How many turn problems a chat format message lists in its detail.
_MAX_PROBLEMS = 5


@dataclass(frozen=True, slots=True)
class Finding:
    """One warning about an example (or, for the task-level codes, about the task).

    `code` is stable (see CHECKS) and is what the app stores and filters on; `message` is for a person and says
    where; `blocking` comes from the task's blocking_checks; `detail` holds JSON-ready figures (counts, paths, ids).
    """

    code: str
    message: str
    blocking: bool = False
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "blocking": self.blocking, "detail": self.detail}


@dataclass(frozen=True)
class Check:
    """One entry of the registry, for the settings form where a lead picks "block" or "warn" per check.

    scope "example": runs as the annotator types and at submit (check_example), so it can block a submission;
    scope "task": found by the task-wide scan (check_task) and stored per example;
    scope "summary": about the whole task (coverage, balance), shown to the lead, never blocking.
    """

    code: str
    title: str
    description: str
    scope: str

    @property
    def blockable(self) -> bool:
        return self.scope != "summary"


CHECKS: dict[str, Check] = {
    check.code: check
    for check in (
        Check(
            "missing_field",
            "Missing field",
            "A field the prompt template needs (outside its optional sections) is empty; in a chat task, no user turn.",
            "example",
        ),
        Check(
            "format",
            "Format",
            "JSON that does not parse or breaks the task's schema; a label outside the label set; "
            "chat turns that are malformed or do not alternate.",
            "example",
        ),
        Check(
            "label_case",
            "Label spelling",
            'The label matches one of the task\'s labels only after ignoring case or spaces ("Positive" for '
            '"positive").',
            "example",
        ),
        Check("empty", "Empty completion", "The completion is empty or only whitespace.", "example"),
        Check("short", "Very short", f"A text completion of fewer than {SHORT_MIN_WORDS} words.", "example"),
        Check("whitespace", "Stray whitespace", "The completion starts or ends with spaces or line breaks.", "example"),
        Check(
            "leak",
            "Answer leak",
            f"The completion, or a run of {LEAK_RUN_WORDS}+ of its words (most of a short one), already appears "
            "in the instruction, context or input, ignoring case and punctuation.",
            "example",
        ),
        Check(
            "duplicate",
            "Duplicate prompt",
            "Another example has the same prompt, ignoring case, punctuation and spacing.",
            "task",
        ),
        Check(
            "near_duplicate",
            "Near-duplicate prompt",
            "Another example's prompt is nearly the same (most word pairs shared in every field).",
            "task",
        ),
        Check(
            "contradiction",
            "Contradicting answers",
            "Approved examples with the same or nearly the same prompt have different completions.",
            "task",
        ),
        Check(
            "inconsistent_prefix",
            "Unusual opening",
            "Most completions open the same way (a greeting, or none at all) and this one does not.",
            "task",
        ),
        Check(
            "inconsistent_signoff",
            "Unusual sign-off",
            "Most completions end the same way (a sign-off, or none at all) and this one does not.",
            "task",
        ),
        Check("length_outlier", "Length outlier", "Far shorter or longer than the task's other completions.", "task"),
        Check(
            "coverage",
            "Coverage",
            "A kind of example (negative, edge, ...) is below the lead's target share.",
            "summary",
        ),
        Check("label_balance", "Label balance", "A label is used for less than half of an even share.", "summary"),
        # Tools tasks (quality/tools.py)
        Check(
            "unknown_tool", "Unknown tool", "A call names a function the task's tool set does not define.", "example"
        ),
        Check(
            "tool_arguments",
            "Invalid tool arguments",
            "A call's arguments are not a JSON object valid against its function's parameters.",
            "example",
        ),
        Check("tool_coverage", "Tool coverage", "A function of the tool set that no example calls.", "summary"),
        Check(
            "no_call_share",
            "Answers without a call",
            "No example answers without calling a tool (or none calls one): the model never learns when not to call.",
            "summary",
        ),
    )
}


def _toolset(task: Any) -> Any:
    """The tool set of a tools task's current template version (None for other tasks)."""
    if getattr(task, "output_format", TEXT) != TOOLS:
        return None
    from ..tools import ToolSet

    return ToolSet.of(getattr(task, "current_template", None))


def check_choices(*, blockable_only: bool = True) -> list[tuple[str, str]]:
    """(code, title) pairs for a settings form."""
    return [(c.code, c.title) for c in CHECKS.values() if c.blockable or not blockable_only]


class TaskRules:
    """What the checks need to know about a task: built from a Task, or from anything with the same attributes."""

    def __init__(
        self,
        *,
        output_format: str = TEXT,
        labels: Sequence[str] = (),
        json_schema: dict | None = None,
        blocking_checks: Sequence[str] = (),
        coverage_targets: Mapping[str, float] | None = None,
        tools: Any = None,
    ) -> None:
        self.tools = tools  # a tools task's ToolSet (annotate/tools.py), or None
        self.output_format = output_format or TEXT
        self.labels = tuple(str(label) for label in labels or ())
        self.json_schema = json_schema
        self.blocking = frozenset(blocking_checks or ())
        self.coverage_targets = dict(coverage_targets or {})
        self._label_set = frozenset(self.labels)
        # "positive" for " Positive ": the label a near miss was meant to be
        self._label_folded = {label.strip().casefold(): label for label in self.labels}
        # None without a schema, or with one Task.clean would refuse (an old row): then any JSON passes.
        self.schema = schemas.compile_schema(json_schema)

    @classmethod
    def of(cls, task: Any) -> "TaskRules":
        """The rules of a Task (or a TaskRules, returned as is)."""
        if isinstance(task, TaskRules):
            return task
        return cls(
            output_format=getattr(task, "output_format", TEXT),
            labels=getattr(task, "labels", None) or (),
            json_schema=getattr(task, "json_schema", None),
            blocking_checks=getattr(task, "blocking_checks", None) or (),
            coverage_targets=getattr(task, "coverage_targets", None) or {},
            tools=_toolset(task),
        )

    def finding(self, code: str, message: str, **detail) -> Finding:
        return Finding(code, message, code in self.blocking, detail)

    def label_of(self, completion: str) -> tuple[str | None, bool]:
        """(the label meant, exact?): exact match, a near miss by case or spaces, or (None, False)."""
        if completion in self._label_set:
            return completion, True
        return self._label_folded.get(completion.strip().casefold()), False


def check_example(
    task: Any,
    *,
    instruction: str = "",
    context: str = "",
    input: str = "",
    messages: Any = None,
    completion: str = "",
    required: Sequence[str] = ("instruction",),
) -> list[Finding]:
    """The per-example warnings of one example, as it stands (fast enough to run on every autosave). `required`: the
    prompt fields the template uses outside its optional sections (rendering.required_fields)."""
    fields = {"instruction": instruction or "", "context": context or "", "input": input or ""}
    folded = {name: fold(value) for name, value in fields.items()}
    completion = completion or ""
    return check_folded(TaskRules.of(task), fields, folded, messages, completion, fold(completion), required)


def check_folded(
    rules: TaskRules,
    fields: Mapping[str, str],
    folded: Mapping[str, bytes],
    messages: Any,
    completion: str,
    completion_folded: bytes,
    required: Sequence[str] = ("instruction",),
) -> list[Finding]:
    """check_example from texts already folded (`text.fold`): an import folds each text once, for these checks and
    for the prompt hash."""
    found = example_findings(rules, fields, folded, messages, completion, completion_folded)
    if rules.output_format not in (CHAT, TOOLS):
        reported = {f.detail.get("field") for f in found if f.code == "missing_field"}
        for name in required:
            if name in fields and name not in reported and not fields[name].strip():
                found.insert(
                    0, rules.finding("missing_field", f"{FIELD_NAMES[name].capitalize()} is empty.", field=name)
                )
    return found


def example_findings(
    rules: TaskRules,
    fields: Mapping[str, str],
    folded: Mapping[str, bytes],
    messages: Any,
    completion: str,
    completion_folded: bytes,
) -> list[Finding]:
    """check_example's work, from texts already folded (the task-wide scan folds each text once for all checks)."""
    if rules.output_format == TOOLS:
        from .tools import tool_findings

        return tool_findings(rules, fields, messages, completion)
    found: list[Finding] = []
    turns = _as_turns(messages) if rules.output_format == CHAT else None
    if rules.output_format == CHAT:
        has_field_turn = any(fields[name].strip() for name in PROMPT_FIELDS)
        problems = _chat_problems(turns, has_field_turn)
        has_user = has_field_turn or any(
            isinstance(t, dict) and t.get("role") == "user" and str(t.get("content") or "").strip()
            for t in (turns if isinstance(turns, list) else [])
        )
        if not has_user:
            found.append(rules.finding("missing_field", "The conversation has no user message: write one."))
        elif problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            found.append(rules.finding("format", problems[0] + more, problems=problems[:_MAX_PROBLEMS]))
    elif not fields["instruction"].strip():
        found.append(rules.finding("missing_field", "The instruction is empty.", field="instruction"))

    if not completion.strip():
        found.append(
            rules.finding(
                "empty", "The completion is empty." if not completion else "The completion is only whitespace."
            )
        )
        return found

    label_spaces = False
    if rules.output_format == LABEL:
        label, exact = rules.label_of(completion)
        if label is None:
            found.append(_not_a_label(rules, completion))
        elif not exact:
            label_spaces = completion.strip() == label
            how = "has spaces or line breaks around it" if label_spaces else "differs only in case"
            found.append(
                rules.finding(
                    "label_case", f"“{completion.strip()}” {how}: write the label exactly “{label}”.", label=label
                )
            )
    elif rules.output_format == JSON:
        problem = _json_problem(rules, completion)
        if problem is not None:
            found.append(problem)

    lead = len(completion) - len(completion.lstrip())
    trail = len(completion) - len(completion.rstrip())
    if (lead or trail) and not label_spaces:
        where = " and ".join(part for part, n in (("starts", lead), ("ends", trail)) if n)
        found.append(
            rules.finding(
                "whitespace",
                f"The completion {where} with whitespace (spaces or line breaks).",
                leading=lead,
                trailing=trail,
            )
        )

    n_words = completion_folded.count(b" ") + 1 if completion_folded else 0
    if rules.output_format == TEXT and n_words < SHORT_MIN_WORDS:
        found.append(rules.finding("short", f"The completion is only {_words(n_words)} long.", words=n_words))

    sources = [(FIELD_NAMES[name], folded[name]) for name in PROMPT_FIELDS if folded[name]]
    if isinstance(turns, list):
        sources += [
            (f"turn {i} ({turn.get('role')})", fold(turn["content"]))
            for i, turn in enumerate(turns, 1)
            if isinstance(turn, dict) and isinstance(turn.get("content"), str) and turn["content"].strip()
        ]
    leak = _leak(rules, completion, completion_folded, sources)
    if leak is not None:
        found.append(leak)
    return found


def _words(n: int) -> str:
    return f"{n} word" if n == 1 else f"{n} words"


# "Did you mean" compares the completion with the labels letter by letter (difflib: quadratic in the lengths), so
# only a completion up to this long gets a suggestion: a near miss of a label is a short word, not a paragraph.
_SUGGEST_MAX_CHARS = 200


def _not_a_label(rules: TaskRules, completion: str) -> Finding:
    shown = completion.strip()
    typed = shown.casefold()
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    close = (
        difflib.get_close_matches(typed, list(rules._label_folded), n=1, cutoff=0.75)
        if len(typed) <= _SUGGEST_MAX_CHARS
        else []
    )
    suggestion = rules._label_folded[close[0]] if close else None
    hint = f" Did you mean “{suggestion}”?" if suggestion else ""
    allowed = ", ".join(rules.labels) if len(rules.labels) <= 12 else ", ".join(rules.labels[:12]) + ", …"
    return rules.finding("format", f"“{shown}” is not one of the labels ({allowed}).{hint}", suggestion=suggestion)


def _json_problem(rules: TaskRules, completion: str) -> Finding | None:
    """The completion as JSON, checked against the task's schema (annotate.schemas bounds both)."""
    problem = schemas.check_document(completion, rules.schema)
    if problem is None:
        return None
    message, detail = problem
    return rules.finding("format", message, **detail)


def _as_turns(messages: Any) -> Any:
    if messages is None or messages == "" or (isinstance(messages, float) and messages != messages):
        return []  # no turns (None, "", or a DataFrame's NaN)
    if isinstance(messages, str | bytes):
        try:
            return orjson.loads(messages)
        except orjson.JSONDecodeError:
            return messages
    if isinstance(messages, tuple):
        return list(messages)
    if hasattr(messages, "tolist"):  # a numpy array from a DataFrame cell
        return messages.tolist()
    return messages


def _chat_problems(turns: Any, has_field_turn: bool) -> list[str]:
    """What is wrong with the prior turns of a chat example, first problem first."""
    if not isinstance(turns, list):
        return ["The prior turns are not a list of {role, content} messages."]
    problems: list[str] = []
    roles: list[tuple[int, str]] = []
    for i, turn in enumerate(turns, 1):
        if not isinstance(turn, dict):
            problems.append(f"Turn {i} is not a {{role, content}} message.")
            continue
        role, content = turn.get("role"), turn.get("content")
        if role not in CHAT_ROLES:
            problems.append(f"Turn {i} has the role “{role}”; use system, user or assistant.")
            continue
        if not isinstance(content, str) or not content.strip():
            problems.append(f"Turn {i} ({role}) is empty.")
        if role == "system":
            if i != 1:
                problems.append(f"Turn {i} is a system message; only the first turn may be one.")
            continue
        roles.append((i, role))
    if has_field_turn:
        roles.append((len(turns) + 1, "user"))  # the template renders the fields as the last user turn
    for k, (i, role) in enumerate(roles):
        expected = "user" if k % 2 == 0 else "assistant"
        if role != expected:
            after = f"after “{roles[k - 1][1]}”" if k else "first"
            problems.append(f"Turn {i} is “{role}” {after}: turns must alternate user, assistant, starting with user.")
            break
    else:
        if roles and roles[-1][1] != "user":
            problems.append("The last turn before the completion is the assistant's; it must be the user's.")
    return problems


# The C-level pre-filter of _leak reads the prompt text once per probe (and per window): it runs only while that
# is at most this many bytes in all (about a millisecond; CPython's substring search is linear in the text read
# for long texts and at worst ~100 times that for needles under 100 bytes in texts under 30,000). Beyond it, a
# long completion against a long prompt, the exact search runs on its own: it is linear in both.
_LEAK_FILTER_BYTES = 1_000_000


def _leak(rules: TaskRules, completion: str, completion_folded: bytes, sources: list[tuple[str, bytes]]):
    """The longest run of completion words found in one source, when it is long enough to be a leak."""
    if not completion_folded or not sources:
        return None
    completion_words = completion_folded.split(b" ")
    n = len(completion_words)
    # A whole field copied; for a label task only this counts (a label naturally appears in the instruction's list
    # of labels), and a one-word text answer equal to a one-word prompt ("Hello" to "Hello") is left alone.
    if n >= _COPY_MIN_WORDS or rules.output_format == LABEL:
        for where, folded in sources:
            if folded == completion_folded:
                return rules.finding("leak", f"The completion is {where} copied.", where=where, words=n, share=1.0)
    if rules.output_format == LABEL:
        return None
    if n < LEAK_SHORT_MIN_WORDS:
        return None
    if rules.output_format == JSON:
        need = n  # extracting a value verbatim is the job; the whole answer pasted into the prompt is a leak
    else:
        need = min(LEAK_RUN_WORDS, max(LEAK_SHORT_MIN_RUN, math.ceil(LEAK_SHORT_SHARE * n - 1e-9)))
    # Any run of `need` words contains a probe of 4 words starting at a multiple of (need - 3): so when no probe
    # occurs in any source (one C-level substring search each), there is no such run, and the exact longest-run
    # search runs only on the rare hits. "|" never occurs in a probe, so no probe spans two sources.
    stride = need - _LEAK_PROBE_WORDS + 1
    # probes are slices of " completion ", spaces included: word m starts after cum[m] word bytes and m spaces
    padded = b" " + completion_folded + b" "
    cum = list(accumulate(map(len, completion_words), initial=0))
    probes = [
        padded[cum[m] + m : cum[m + _LEAK_PROBE_WORDS] + m + _LEAK_PROBE_WORDS + 1]
        for m in range(0, n - _LEAK_PROBE_WORDS + 1, stride)
    ]
    haystack = b" " + b" | ".join(folded for _, folded in sources) + b" "
    candidates = sources
    # Each search reads the haystack once: the filter costs (searches × haystack), which grows with the product of
    # the completion's and the prompt's lengths; past _LEAK_FILTER_BYTES the linear exact search is the cheaper one.
    if len(probes) * len(haystack) <= _LEAK_FILTER_BYTES:
        hits = [m * stride for m, probe in enumerate(probes) if probe in haystack]
        if not hits:
            return None
        # A probe can occur by chance (four common words). A run of `need` words holds a hit probe, so it is one of
        # the windows of `need` words around a hit: when none of those occurs either, there is no leak, without the
        # exact search (which would otherwise run on every chance hit: one example in five on a small vocabulary).
        windows = {
            padded[cum[s] + s : cum[s + need] + s + need + 1]
            for m in hits
            for s in range(max(0, m + _LEAK_PROBE_WORDS - need), min(m, n - need) + 1)
        }
        # the windows are looked for in the haystack, then again in each source (together, the haystack once more)
        if 2 * len(windows) * len(haystack) <= _LEAK_FILTER_BYTES:
            if not any(window in haystack for window in windows):
                return None
            candidates = [
                (where, folded)
                for where, folded in sources
                if any(window in b" " + folded + b" " for window in windows)
            ]
    # The exact longest run, in time linear in the completion and the sources (difflib's SequenceMatcher, used
    # before, is quadratic on repeated words: 20,000 × "a" took 34 s).
    automaton = LongestRun(completion_words)
    best: tuple[int, str, int] | None = None
    for where, folded in candidates:
        size, start = automaton.longest_in(folded.split(b" "))
        if size >= need and (best is None or size > best[0]):
            best = (size, where, start)
    if best is None:
        return None
    size, where, start = best
    quote = _quote(completion, start, size, completion_words)
    what = "all" if size == n else f"{size} of the {n}"
    return rules.finding(
        "leak",
        f"The completion repeats {what} words of {where}: “{quote}”",
        where=where,
        words=size,
        share=round(size / n, 3),
    )


def _quote(completion: str, start: int, size: int, completion_words: list[bytes]) -> str:
    """The leaked run as the annotator wrote it (or folded, when normalisation moved the word boundaries)."""
    text = completion if completion.isascii() else unicodedata.normalize("NFKC", completion)
    spans = [m.span() for m in _WORD.finditer(text)]
    if len(spans) == len(completion_words):
        quoted = text[spans[start][0] : spans[start + size - 1][1]]
    else:
        quoted = b" ".join(completion_words[start : start + size]).decode()
    quoted = " ".join(quoted.split())
    return quoted if len(quoted) <= QUOTE_CHARS else quoted[: QUOTE_CHARS - 1] + "…"
