"""Alpaca: `{"instruction": ..., "input": ..., "output": ...}`; the context goes into `input` as the template says.

Rules: the Stanford Alpaca data format (tatsu-lab/stanford_alpaca README, "Data Release": instruction, input that
may be empty, output), as LLaMA-Factory's data/README.md reads it (instruction and input joined as the prompt, output
the response). Checked here: exactly those three keys in that order, all strings, the output not empty.
"""

from collections.abc import Mapping

import orjson

from annotate.rendering import TemplateSpec, render_text, rendered_length, text_renderer

from ._rules import INLINE_REASONING, LineRenderer, Renderer, flat_problem, text_ok, with_thinking

NAME = "alpaca"
LABEL = "Alpaca"
RECORD_KEYS = ("instruction", "input", "output")
TEMPLATE_TEXT = "alpaca_input_format"
USES_TURNS = False
EXTRA_FILES: tuple[str, ...] = ()
SHAPE = '{"instruction": …, "input": …, "output": …}'
EXAMPLE = {"instruction": "Where is my parcel?", "input": "Order shipped on Monday.", "output": "On its way."}
RULES = "Stanford Alpaca README (“Data Release”); LLaMA-Factory data/README.md (Alpaca format)"
# LLaMA-Factory reads Alpaca too: the reasoning goes in the output, as its data/README.md says.
REASONING = INLINE_REASONING


def renderer(spec: TemplateSpec) -> Renderer:
    input_format = spec.alpaca_input_format
    return lambda fields, completion, messages=None, reasoning=None: {
        "instruction": fields.get("instruction", ""),
        "input": render_text(input_format, fields),
        "output": with_thinking(completion, reasoning),
    }


def line_renderer(spec: TemplateSpec) -> LineRenderer:
    """The JSON line of a record without building it: the bytes orjson.dumps gives the renderer's record (the same
    strings, the keys in order, no spaces). None (the full way, which names the problem) for a reasoning, an
    instruction that is not a string, or a completion that is not a non-blank string."""
    input_text = text_renderer(spec.alpaca_input_format)
    dumps = orjson.dumps

    def line(fields: Mapping[str, str], completion: str, messages=None, reasoning: str | None = None) -> bytes | None:
        instruction = fields.get("instruction", "")
        if reasoning or instruction.__class__ is not str or completion.__class__ is not str:
            return None
        if not completion or completion.isspace():
            return None
        return b"".join(
            (b'{"instruction":', dumps(instruction), b',"input":', dumps(input_text(fields)),
             b',"output":', dumps(completion), b"}")
        )  # fmt: skip

    return line


def record_ok(record) -> bool:
    return (
        record.__class__ is dict
        and len(record) == 3
        and tuple(record) == RECORD_KEYS
        and record["instruction"].__class__ is str
        and record["input"].__class__ is str
        and text_ok(record["output"])
    )


def problem(record) -> str | None:
    return None if record_ok(record) else flat_problem(record, RECORD_KEYS)


def min_chars(spec: TemplateSpec, fields: Mapping[str, str]) -> int:
    return len(fields.get("instruction") or "") + rendered_length(spec.alpaca_input_format, fields)


def extra_files(**_) -> dict[str, bytes]:
    return {}
