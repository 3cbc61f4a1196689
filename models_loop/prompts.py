"""What is sent to the model: the draft and judge prompts (the defaults, built from the task), the messages of one
example, and reading the judge's structured answer.

A lead's prompt is plain text sent as the system message: nothing in it is interpreted (no placeholders, no
template syntax), so a prompt can never reach into the server or the data.
"""

import json
import re

from annotate.models import Example, OutputFormat, Task
from annotate.rendering import TemplateSpec, record_renderer

from .client import ModelBadAnswer

MAX_PROMPT_CHARS = 20_000  # of a lead's draft or judge prompt
SCHEMA_HINT_CHARS = 4_000  # of a json task's schema quoted in the default draft prompt
JUDGE_MAX_TOKENS = 300
JUDGE_READ_CHARS = 20_000  # of a judge's answer searched for the JSON object
REASON_CHARS = 300

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        "reason": {"type": "string", "description": "One line: the most important issue, or why it is good."},
    },
    "required": ["score", "reason"],
    "additionalProperties": False,
}
# OpenAI's structured output (also vLLM's, llama.cpp server's and Ollama's): the answer must match the schema. A
# server that ignores it still gets the instruction in the prompt, and parse_judgement reads what comes back.
JUDGE_RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "judgement", "strict": True, "schema": JUDGE_SCHEMA},
}


class JudgeJunk(ModelBadAnswer):
    """The judge's answer holds no score from 1 to 5."""


def _format_hint(task: Task, *, for_judge: bool) -> str:
    if task.output_format == OutputFormat.LABEL and task.labels:
        labels = ", ".join(task.labels)
        if for_judge:
            return f"The completion must be exactly one of these labels: {labels}."
        return f"Answer with exactly one of these labels and nothing else: {labels}."
    if task.output_format == OutputFormat.JSON:
        hint = "The completion must be JSON only." if for_judge else "Answer with JSON only, without code fences."
        if task.json_schema:
            schema = json.dumps(task.json_schema, separators=(",", ":"))[:SCHEMA_HINT_CHARS]
            hint += f" It must validate against this JSON Schema: {schema}"
        return hint
    return ""


def _system_message(task: Task) -> str:
    template = task.current_template
    return template.effective_system_message() if template else task.system_prompt


def default_draft_prompt(task: Task) -> str:
    """The draft prompt a task gets unless its lead writes one: its system prompt, the guidelines, the format."""
    parts = [
        _system_message(task),
        "Write the ideal answer to the request below, as the guidelines ask. Give the answer only: no preamble, "
        "no notes about the answer.",
        _format_hint(task, for_judge=False),
        f"Guidelines:\n{task.guidelines}" if task.guidelines.strip() else "",
    ]
    return "\n\n".join(part.strip() for part in parts if part.strip())


def default_judge_prompt(task: Task) -> str:
    """The judge prompt a task gets unless its lead writes one: the scale, the guidelines, the task's system prompt."""
    system = _system_message(task)
    parts = [
        "You review one training example of a fine-tuning dataset: a prompt and the completion a person wrote for "
        "it. Score how well the completion follows the guidelines and serves the prompt, from 1 to 5: 5 exemplary, "
        "4 good with small issues, 3 acceptable but flawed, 2 poor, 1 wrong, unsafe or off task. Give a one-line "
        'reason naming the most important issue. Answer only with a JSON object: {"score": <1-5>, "reason": '
        '"<one line>"}.',
        _format_hint(task, for_judge=True),
        f"The model being trained answers under this system prompt:\n{system}" if system.strip() else "",
        f"Guidelines:\n{task.guidelines}" if task.guidelines.strip() else "",
    ]
    return "\n\n".join(part.strip() for part in parts if part.strip())


def _chat_turns(example: Example, spec: TemplateSpec) -> list[dict]:
    """The example's prompt as chat turns (the openai-chat export's shape, without the answer or a system turn of the
    template): what the trained model will see."""
    bare = TemplateSpec(spec.prompt_format, spec.chat_user_format, spec.alpaca_input_format, system_message="")
    record = record_renderer(bare, "openai-chat")(example.prompt_fields(), "", example.messages or None)
    return record["messages"][:-1]


def draft_messages(*, prompt: str, example: Example, spec: TemplateSpec) -> list[dict]:
    """The request for a draft of `example`: the draft prompt as the system message, then the example's turns. An
    example's own system turn (imported chat) is kept, after the prompt, in the same system message."""
    turns = _chat_turns(example, spec)
    if turns and turns[0]["role"] == "system":
        first = {"role": "system", "content": f"{prompt}\n\n{turns[0]['content']}".strip()}
        return [first, *turns[1:]]
    return [{"role": "system", "content": prompt}, *turns] if prompt.strip() else turns


def judge_messages(*, prompt: str, example: Example, spec: TemplateSpec, completion: str) -> list[dict]:
    """The request for a judgement of `completion` as the answer to `example`."""
    transcript = "\n\n".join(f"[{turn['role']}]\n{turn['content']}" for turn in _chat_turns(example, spec))
    user = f"Prompt:\n{transcript}\n\nCompletion:\n{completion}"
    return [{"role": "system", "content": prompt}, {"role": "user", "content": user}]


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def parse_judgement(content: str) -> tuple[int, str]:
    """(score 1-5, one-line reason) from a judge's answer: the JSON object asked for, or one inside text or a code
    fence; a score given as "4", 4.0 or "4/5" is read too. Raise JudgeJunk when no score from 1 to 5 is found."""
    text = _FENCE.sub("", content[:JUDGE_READ_CHARS].strip())
    for candidate in _objects(text):
        score = _score(candidate.get("score"))
        if score is not None:
            reason = candidate.get("reason")
            reason = " ".join(str(reason).split()) if reason not in (None, "") else ""
            return score, (reason[:REASON_CHARS] or "(no reason given)")
    shown = " ".join(content.split())[:80]
    raise JudgeJunk(
        f'The model\'s answer is not a judgement (expected JSON {{"score": 1-5, "reason": "..."}}): {shown!r}'
    )


def _objects(text: str):
    """JSON objects in `text`: the whole text, else each decodable object starting at one of the first 20 '{'."""
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        yield whole
        return
    decoder = json.JSONDecoder()
    start = text.find("{")
    for _ in range(20):  # bounded: a junk answer full of braces is not searched without end
        if start < 0:
            return
        try:
            value, _end = decoder.raw_decode(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict):
            yield value
        start = text.find("{", start + 1)


def _score(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([1-5])(?:\s*/\s*5)?\s*", value)
        value = int(match.group(1)) if match else None
    return value if isinstance(value, int) and 1 <= value <= 5 else None
