"""TRL's standard prompt-completion type: `{"prompt": <text>, "completion": <text>}`.

Rules: TRL's "Dataset formats and types" guide (standard format, prompt-completion type: two string columns, the
prompt and the text the model learns to produce). Checked here: exactly `prompt` then `completion`, both strings, the
completion not empty.
"""

from collections.abc import Mapping

import orjson

from annotate.rendering import TemplateSpec, render_text, rendered_length, text_renderer

from ._rules import INLINE_REASONING, LineRenderer, Renderer, flat_problem, text_ok, with_thinking

NAME = "prompt-completion"
LABEL = "Prompt / completion"
RECORD_KEYS = ("prompt", "completion")
TEMPLATE_TEXT = "prompt_format"
USES_TURNS = False
EXTRA_FILES: tuple[str, ...] = ()
SHAPE = '{"prompt": …, "completion": …}'
EXAMPLE = {"prompt": "### Question:\nWhere is my parcel?\n\n### Answer:\n", "completion": "On its way."}
RULES = "TRL documentation, “Dataset formats and types” (standard prompt-completion)"
# TRL's standard prompt-completion type has one text to learn; a reasoning model's answer starts with its reasoning.
REASONING = INLINE_REASONING


def renderer(spec: TemplateSpec) -> Renderer:
    prompt_format = spec.prompt_format
    return lambda fields, completion, messages=None, reasoning=None: {
        "prompt": render_text(prompt_format, fields),
        "completion": with_thinking(completion, reasoning),
    }


def line_renderer(spec: TemplateSpec) -> LineRenderer:
    """The JSON line of a record without building it: the bytes orjson.dumps gives the renderer's record (the same
    strings, the keys in order, no spaces). None (the full way, which names the problem) for a reasoning or a
    completion that is not a non-blank string."""
    prompt = text_renderer(spec.prompt_format)
    dumps = orjson.dumps

    def line(fields: Mapping[str, str], completion: str, messages=None, reasoning: str | None = None) -> bytes | None:
        if reasoning or completion.__class__ is not str or not completion or completion.isspace():
            return None
        return b"".join((b'{"prompt":', dumps(prompt(fields)), b',"completion":', dumps(completion), b"}"))

    return line


def record_ok(record) -> bool:
    return (
        record.__class__ is dict
        and len(record) == 2
        and tuple(record) == RECORD_KEYS
        and record["prompt"].__class__ is str
        and text_ok(record["completion"])
    )


def problem(record) -> str | None:
    return None if record_ok(record) else flat_problem(record, RECORD_KEYS)


def min_chars(spec: TemplateSpec, fields: Mapping[str, str]) -> int:
    return rendered_length(spec.prompt_format, fields)


def extra_files(**_) -> dict[str, bytes]:
    return {}
