"""Rendering examples into training records, the per-record core of every export.

Prints records/s per format and the cost of serialising with orjson against the standard library's json,
measured in the same run.
"""

import json
import time

import orjson

from annotate.rendering import EXPORT_FORMATS, PRESETS, TemplateSpec, render_record

N = 200_000


def _examples(n: int):
    filler = "The thermostat shows a blinking amber light after the firmware update. " * 8  # ~600 characters
    for i in range(n):
        question = f"Customer {i} asks: why is my light amber?"
        yield {"instruction": question, "context": filler if i % 2 else "", "input": ""}


def run(argv: list[str] | None = None) -> None:
    preset = PRESETS["qa-context"]
    spec = TemplateSpec(preset["prompt_format"], preset["chat_user_format"], preset["alpaca_input_format"], "Be kind.")
    completion = "Hold the button for ten seconds, then wait for the light to turn green. " * 5
    for fmt in EXPORT_FORMATS:
        started = time.perf_counter()
        records = [render_record(spec, fmt, fields=fields, completion=completion) for fields in _examples(N)]
        render_seconds = time.perf_counter() - started
        started = time.perf_counter()
        fast = b"".join(orjson.dumps(record) + b"\n" for record in records)
        orjson_seconds = time.perf_counter() - started
        started = time.perf_counter()
        slow = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        json_seconds = time.perf_counter() - started
        print(
            f"   {fmt:<18} render {N / render_seconds:>10,.0f} rec/s · orjson {N / orjson_seconds:>10,.0f} rec/s"
            f" · json {N / json_seconds:>9,.0f} rec/s · orjson/json speed ×{json_seconds / orjson_seconds:.1f}"
            f" · {len(fast) / N:,.0f} B/record"
        )
        assert len(slow) > 0
