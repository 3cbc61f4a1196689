"""Export targets: one module per format, registered here; adding a target is one new module and its tests.

Each module says everything about its target:
- NAME, LABEL: the format's name (the API's, the command's) and what the page calls it.
- RECORD_KEYS: the keys of every record, in order (the columns `datasets` shows); SHAPE and EXAMPLE, for the card
  and the README; RULES, the documentation its checks follow (the module docstring says which rule comes from where).
- TEMPLATE_TEXT: the template text it fills in (the template size limits apply to it); USES_TURNS: whether a chat
  task's prior turns go into the record.
- TOOLS (optional, default False): it renders a tools task's calls, results and tool set; exports of a tools task
  to any other format are refused.
- renderer(spec) -> (fields, completion, prior turns) -> record, built once per template version.
- record_ok(record) -> bool, fast, for the common case; problem(record) -> the first rule it breaks, or None.
- min_chars(spec, fields): characters a record holds besides completion and prior turns (the preview's early bound).
- EXTRA_FILES and extra_files(dataset=, splits=): files written beside the JSONL files (sharegpt's dataset_info.json).
- PAIRS (optional, False when absent): its records are preference pairs (preferences app), rendered from
  (fields, (chosen, rejected), prior turns).
"""

from types import ModuleType

from . import alpaca, messages, openai_chat, openai_preference, prompt_completion, sharegpt, trl_preference

FORMATS: dict[str, ModuleType] = {
    m.NAME: m for m in (openai_chat, messages, prompt_completion, alpaca, sharegpt, trl_preference, openai_preference)
}
CHOICES = [(m.NAME, m.LABEL) for m in FORMATS.values()]
EXTRA_FILE_NAMES = tuple(dict.fromkeys(name for m in FORMATS.values() for name in m.EXTRA_FILES))
PAIR_FORMATS = frozenset(name for name, m in FORMATS.items() if getattr(m, "PAIRS", False))
