"""TRL's preference format for its DPO trainer, conversational with an explicit prompt:
`{"prompt": [messages], "chosen": [assistant message], "rejected": [assistant message]}`.

Rules: TRL documentation, "Dataset formats and types" (preference: conversational, explicit prompt; the prompt is
the list of messages before the completion, chosen and rejected each a list holding the assistant's message), and
the DPO trainer's "Expected dataset type" (preference). Checked here: exactly these three keys; the prompt's turns
valid (role and content, known role, non-empty text), the last one the user's; each side exactly one assistant
message with non-empty text.
"""

from collections.abc import Mapping

from annotate.rendering import TemplateSpec

from ._pairs import prompt_and_sides, prompt_ok, prompt_problem, side_ok, side_problem
from ._rules import chat_chars, keys_problem

NAME = "trl-preference"
LABEL = "TRL preference (DPO)"
PAIRS = True  # records are preference pairs, not examples
RECORD_KEYS = ("prompt", "chosen", "rejected")
TEMPLATE_TEXT = "chat_user_format"
USES_TURNS = True
EXTRA_FILES: tuple[str, ...] = ()
SHAPE = (
    '{"prompt": [{"role": "system", "content": …}, {"role": "user", "content": …}], '
    '"chosen": [{"role": "assistant", "content": …}], "rejected": [{"role": "assistant", "content": …}]}'
)
EXAMPLE = {
    "prompt": [{"role": "user", "content": "Where is my parcel?"}],
    "chosen": [{"role": "assistant", "content": "On its way: it arrives tomorrow."}],
    "rejected": [{"role": "assistant", "content": "No idea."}],
}
RULES = "TRL documentation, “Dataset formats and types” (preference, conversational, explicit prompt)"


def renderer(spec: TemplateSpec):
    render = prompt_and_sides(spec)

    def record(fields, completion, messages=None, reasoning=None) -> dict:  # a pair has no reasoning
        prompt, chosen, rejected = render(fields, completion, messages)
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}

    return record


def record_ok(record) -> bool:
    return (
        record.__class__ is dict
        and len(record) == 3
        and prompt_ok(record.get("prompt"))
        and side_ok(record.get("chosen"))
        and side_ok(record.get("rejected"))
    )


def problem(record) -> str | None:
    if record_ok(record):
        return None
    return (
        keys_problem(record, RECORD_KEYS)
        or prompt_problem("prompt", record["prompt"])
        or side_problem("chosen", record["chosen"])
        or side_problem("rejected", record["rejected"])
        or f"not a {NAME} record"
    )


def min_chars(spec: TemplateSpec, fields: Mapping[str, str]) -> int:
    return chat_chars(spec, fields)


def extra_files(**_) -> dict[str, bytes]:
    return {}
