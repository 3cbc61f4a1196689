"""The check registry, the result shape, and the checks of one example (run on every autosave, so they stay cheap).

Thresholds are named constants here so a reviewer can read what triggers a warning without reading code.
"""

import copy
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .. import schemas
from .leaks import LEAK_SHARE, Source, find_leak, input_reuse_of
from .text import fold

TEXT, JSON, LABEL, CHAT, TOOLS = "text", "json", "label", "chat", "tools"
CHAT_ROLES = ("system", "user", "assistant")
PROMPT_FIELDS = ("instruction", "context", "input")
FIELD_NAMES = {"instruction": "the instruction", "context": "the context", "input": "the input"}

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
        Check("whitespace", "Stray whitespace", "The completion starts or ends with spaces or line breaks.", "example"),
        Check(
            "leak",
            "Answer leak",
            "The prompt already holds the answer the model should produce, so it would learn to copy: an answer "
            "written into a field after a heading (“Answer:”, “Expected output:”, “TL;DR:”), an earlier reply of the "
            f"assistant repeated, or (when the task writes new text) {LEAK_SHARE:.0%} or more of the completion's "
            "words found in one field; in a task that quotes, the whole context handed back. Repeating the input is "
            "not a leak where the task quotes or transforms it (the task setting “The completion”).",
            "example",
        ),
        Check(
            "duplicate",
            "Duplicate prompt",
            "Another example has the same prompt, ignoring case, punctuation (apostrophes too: “What's” is “whats”) "
            "and spacing.",
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
            "short",
            "Very short",
            "A text completion of a few words where the prompt wants more: the instruction asks for an explanation "
            "or description, or the completion is under a quarter of the typical length of its peers (answers to "
            "the same instruction, else the task) and of its input. A question may get a one-word answer where the "
            "task has others like it; labels, yes/no and one-word translations of one-word inputs are fine.",
            "task",
        ),
        Check(
            "inconsistent_prefix",
            "Unusual opening",
            "Where most completions open the same way (a greeting), one that does not; where most have no opening, "
            "one that opens with filler (“Sure!”, “Great question!”). Greetings of letters and chats are content.",
            "task",
        ),
        Check(
            "inconsistent_signoff",
            "Unusual sign-off",
            "Where most completions end the same way (“Best regards, …”), one that does not; where most have no "
            "sign-off, one that ends with filler (“Hope this helps!”). Sign-offs of letters are content.",
            "task",
        ),
        Check(
            "length_outlier",
            "Length outlier",
            "Over four times the upper quartile of the task's lengths (a pasted document), or under a fifth of the "
            "lower quartile with (nearly) no other completion near it (a truncation).",
            "task",
        ),
        Check(
            "coverage",
            "Coverage",
            "A kind of example (negative, edge, ...) is below the lead's target share.",
            "summary",
        ),
        Check("label_balance", "Label balance", "A label is used for less than half of an even share.", "summary"),
        # Tools tasks (quality/tools.py)
        Check(
            "unknown_tool",
            "Unknown tool",
            "A call names a function the tool set of the example's template version does not define.",
            "example",
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


def _toolset(task: Any, template: Any = None) -> Any:
    """The tool set of a tools task's template version `template` (default: its current one); None for other
    tasks."""
    if getattr(task, "output_format", TEXT) != TOOLS:
        return None
    from ..tools import ToolSet

    return ToolSet.of(template if template is not None else getattr(task, "current_template", None))


def _version_toolsets(task: Any) -> dict:
    """Template pk -> ToolSet of every version of a tools task that has a tool set (one query); {} without a task."""
    templates = getattr(task, "templates", None)
    if templates is None or getattr(task, "pk", None) is None:
        return {}
    from ..tools import ToolSet

    rows = templates.exclude(tools=None).values_list("pk", "tools", "parallel_tool_calls")
    return {pk: ToolSet.of_text(text, parallel=parallel) for pk, text, parallel in rows}


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
        input_reuse: str = "",
        tools: Any = None,
        task: Any = None,
    ) -> None:
        # A tools task's ToolSet (annotate/tools.py), or None: of the template version the rules were made for (the
        # current one unless told), the one the task-wide figures (coverage) use.
        self.tools = tools
        self._task = task  # where tools_for finds the other versions' tool sets
        self._tool_sets: dict | None = None
        self.output_format = output_format or TEXT
        # how the completion uses its prompt ("" automatic): what the leak check treats as the task (leaks.py)
        self.input_reuse = input_reuse_of(input_reuse or "", self.output_format)
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
    def of(cls, task: Any, *, template: Any = None) -> "TaskRules":
        """The rules of a Task (or a TaskRules, returned as is). `template`: the template version of the example to
        check; a tools task's calls are checked against that version's tool set (default: the current version's)."""
        if isinstance(task, TaskRules):
            if template is None or task.output_format != TOOLS:
                return task
            rules = copy.copy(task)
            rules.tools = _toolset(task, template)
            return rules
        return cls(
            output_format=getattr(task, "output_format", TEXT),
            labels=getattr(task, "labels", None) or (),
            json_schema=getattr(task, "json_schema", None),
            blocking_checks=getattr(task, "blocking_checks", None) or (),
            coverage_targets=getattr(task, "coverage_targets", None) or {},
            input_reuse=getattr(task, "input_reuse", "") or "",
            tools=_toolset(task, template),
            task=task,
        )

    def tools_for(self, template_id: Any) -> Any:
        """The tool set of the task's template version `template_id`: a tools task's example is checked against
        the tools of its own version (an example of v1 may call a function v2 dropped). The rules' own tool set for
        a version it does not know, and None outside tools tasks. One query, for all versions, on the first call."""
        if self.output_format != TOOLS:
            return None
        if self._tool_sets is None:
            self._tool_sets = _version_toolsets(self._task)
        return self._tool_sets.get(template_id, self.tools)

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
    template: Any = None,
) -> list[Finding]:
    """The per-example warnings of one example, as it stands (fast enough to run on every autosave). `required`: the
    prompt fields the template uses outside its optional sections (rendering.required_fields); `template`: the
    example's template version (a tools task checks calls against its tool set; default: the current version)."""
    fields = {"instruction": instruction or "", "context": context or "", "input": input or ""}
    folded = {name: fold(value) for name, value in fields.items()}
    completion = completion or ""
    rules = TaskRules.of(task, template=template)
    return check_folded(rules, fields, folded, messages, completion, fold(completion), required)


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
    return example_findings(rules, fields, folded, messages, completion, completion_folded, required)


def example_findings(
    rules: TaskRules,
    fields: Mapping[str, str],
    folded: Mapping[str, bytes],
    messages: Any,
    completion: str,
    completion_folded: bytes,
    required: Sequence[str] = ("instruction",),
    tools: Any = None,
) -> list[Finding]:
    """check_example's work, from texts already folded (the task-wide scan folds each text once for all checks).
    `required`: the prompt fields the example's template uses outside its optional sections; each empty one is a
    missing field (the instruction always, outside chat). `tools`: the ToolSet of the example's template version
    (a tools task; default: the rules' own)."""
    if rules.output_format == TOOLS:
        from .tools import tool_findings

        return tool_findings(rules, fields, messages, completion, tools if tools is not None else rules.tools)
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
    else:
        for name in ("instruction", *(name for name in required if name != "instruction")):
            if name in fields and not fields[name].strip():
                found.append(rules.finding("missing_field", f"{FIELD_NAMES[name].capitalize()} is empty.", field=name))

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

    sources = [
        Source(name, None, "instruction" if name == "instruction" else "material", FIELD_NAMES[name], fields[name], f)
        for name in PROMPT_FIELDS
        if (f := folded[name])
    ]
    if isinstance(turns, list):
        for i, turn in enumerate(turns):
            if isinstance(turn, dict) and isinstance(turn.get("content"), str) and turn["content"].strip():
                role = turn.get("role")
                kind = "reply" if role == "assistant" else "instruction" if role == "system" else "material"
                where = f"turn {i + 1} ({role})"
                sources.append(Source("messages", i, kind, where, turn["content"], fold(turn["content"])))
    leak = find_leak(rules, completion, completion_folded, sources)
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
