"""Dataset quality checks (issue 6): pure Python + numpy/pandas, no Django ORM, so they run anywhere and fast.

- `check_example(task, *, instruction, context, input, messages, completion, template) -> list[Finding]`: the
  per-example checks (missing_field, format, label_case, empty, whitespace, leak: leaks.py; a tools task's calls
  against the tool set of `template`, the example's version: tools.py), cheap enough for every autosave;
  `check_folded` is the same from texts already folded with `fold` (an import folds each text once).
- `check_task(data, task) -> TaskReport`: a DataFrame (or an iterator of DataFrame chunks) of a task's examples in,
  the task-wide checks (duplicate, near_duplicate, contradiction; short, inconsistent_prefix, inconsistent_signoff,
  length_outlier, judged against the task's own completions: style.py) plus the per-example ones for every row out,
  with coverage, label balance and token totals.
- `count_tokens(text)`, `estimate_training_cost(total_tokens, *, price_per_million, epochs)`.
- `CHECKS` (code -> Check(title, description, scope)) and `check_choices()` for the lead's block/warn settings.

`task` is a Task or anything with its attributes (output_format, labels, json_schema, blocking_checks,
coverage_targets, input_reuse), or a TaskRules built once and reused. A tools task's tool sets are the one place
read through the task's relations (`current_template`, and `templates` for the scan's other versions:
TaskRules.tools_for).
"""

import importlib

# Loaded on first use (PEP 562), so that importing one submodule (exports.matching's process imports near_duplicates
# alone) does not load the checks and pandas: name -> the submodule that defines it.
_SOURCES = {
    **dict.fromkeys(("CHECKS", "Check", "Finding", "TaskRules", "check_choices", "check_example", "check_folded"),
                    "checks"),
    **dict.fromkeys(("NEAR_DUP_MIN_WORDS", "NEAR_DUP_THRESHOLD"), "near_duplicates"),
    **dict.fromkeys(("TaskReport", "TaskScan", "check_task"), "task"),
    **dict.fromkeys(("count_tokens", "estimate_training_cost", "fold", "normalise", "prompt_key"), "text"),
}  # fmt: skip


def __getattr__(name: str):
    source = _SOURCES.get(name)
    if source is None:  # a submodule, as `from annotate import quality; quality.text` found it when all were loaded
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{source}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CHECKS",
    "NEAR_DUP_MIN_WORDS",
    "NEAR_DUP_THRESHOLD",
    "Check",
    "Finding",
    "TaskReport",
    "TaskRules",
    "TaskScan",
    "check_choices",
    "check_example",
    "check_folded",
    "check_task",
    "count_tokens",
    "estimate_training_cost",
    "fold",
    "normalise",
    "prompt_key",
]
