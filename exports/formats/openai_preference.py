"""OpenAI's preference fine-tuning (DPO) format:
`{"input": {"messages": [...]}, "preferred_output": [assistant message], "non_preferred_output": [assistant message]}`.

Rules: OpenAI's fine-tuning guide, "Direct preference optimization" (each line an `input` holding the `messages` of
the prompt, and `preferred_output` and `non_preferred_output`, each a list holding the assistant's message). Checked
here: exactly these three keys; `input` exactly `messages`, its turns valid (role and content, known role,
non-empty text), the last one the user's; each output exactly one assistant message with non-empty text.
"""

from collections.abc import Mapping

from annotate.rendering import TemplateSpec

from ._pairs import prompt_and_sides, prompt_ok, prompt_problem, side_ok, side_problem
from ._rules import chat_chars, keys_problem

NAME = "openai-preference"
LABEL = "OpenAI preference (DPO)"
PAIRS = True
RECORD_KEYS = ("input", "preferred_output", "non_preferred_output")
TEMPLATE_TEXT = "chat_user_format"
USES_TURNS = True
EXTRA_FILES: tuple[str, ...] = ()
SHAPE = (
    '{"input": {"messages": [{"role": "system", "content": …}, {"role": "user", "content": …}]}, '
    '"preferred_output": [{"role": "assistant", "content": …}], '
    '"non_preferred_output": [{"role": "assistant", "content": …}]}'
)
EXAMPLE = {
    "input": {"messages": [{"role": "user", "content": "Where is my parcel?"}]},
    "preferred_output": [{"role": "assistant", "content": "On its way: it arrives tomorrow."}],
    "non_preferred_output": [{"role": "assistant", "content": "No idea."}],
}
RULES = "OpenAI fine-tuning guide, “Direct preference optimization”"


def renderer(spec: TemplateSpec):
    render = prompt_and_sides(spec)

    def record(fields, completion, messages=None, reasoning=None) -> dict:  # a pair has no reasoning
        prompt, chosen, rejected = render(fields, completion, messages)
        return {"input": {"messages": prompt}, "preferred_output": chosen, "non_preferred_output": rejected}

    return record


def record_ok(record) -> bool:
    if record.__class__ is not dict or len(record) != 3:
        return False
    given = record.get("input")
    return (
        given.__class__ is dict
        and len(given) == 1
        and prompt_ok(given.get("messages"))
        and side_ok(record.get("preferred_output"))
        and side_ok(record.get("non_preferred_output"))
    )


def problem(record) -> str | None:
    if record_ok(record):
        return None
    found = keys_problem(record, RECORD_KEYS)
    if found:
        return found
    given = record["input"]
    return (
        (keys_problem(given, ("messages",)) and "input must be an object with exactly the key messages")
        or prompt_problem("input.messages", given["messages"])
        or side_problem("preferred_output", record["preferred_output"])
        or side_problem("non_preferred_output", record["non_preferred_output"])
        or f"not a {NAME} record"
    )


def min_chars(spec: TemplateSpec, fields: Mapping[str, str]) -> int:
    return chat_chars(spec, fields)


def extra_files(**_) -> dict[str, bytes]:
    return {}
