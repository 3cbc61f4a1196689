"""Trainer preflight: 100,000 examples rendered through a chat template (with {% generation %} markers, in the
sandbox) and counted with a byte-level BPE tokenizer trained here, as an export with a tokenizer does.

Prints records/s of the whole preflight, and of its two halves measured alone in the same run: the sandboxed
template render, and `encode_batch`.
"""

import os
import time

import orjson
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from .common import setup_django

N = 100_000
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] | trim }}<|im_end|>"
    "{% endgeneration %}{% else %}{{ message['content'] | trim }}<|im_end|>{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
FILLER = "The thermostat shows a blinking amber light after the firmware update. "
ANSWER = "Hold the button for ten seconds, then wait for the light to turn green. "


def _tokenizer() -> str:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=4000, special_tokens=["<|im_start|>", "<|im_end|>"])
    corpus = [f"Customer {i} asks: why is my light amber? " + FILLER * 3 + ANSWER * 2 for i in range(2000)]
    tokenizer.train_from_iterator(corpus, trainer)
    return tokenizer.to_str()


def _examples(n: int):
    for i in range(n):
        fields = {"instruction": f"Customer {i} asks: why is my light amber?", "context": FILLER * (i % 8), "input": ""}
        yield i, f"00000000-0000-0000-0000-{i:012d}", fields, ANSWER * (1 + i % 4)


def run(argv: list[str] | None = None) -> None:
    setup_django()
    from annotate.rendering import PRESETS, TemplateSpec
    from exports.chat_template import ChatTemplate
    from exports.formats._rules import chat_turns
    from exports.models import TaskTokenizer
    from exports.preflight import BATCH, Preflight

    preset = PRESETS["qa-context"]
    spec = TemplateSpec(preset["prompt_format"], preset["chat_user_format"], preset["alpaca_input_format"], "Be kind.")
    config = {"name_or_path": "bench/bpe-4k", "chat_template": CHATML, "eos_token": "<|im_end|>"}
    row = TaskTokenizer(name="bench/bpe-4k", tokenizer_json=_tokenizer(), config_json=orjson.dumps(config).decode())
    row.sha256 = ""
    examples = list(_examples(N))
    splits = ("train", "train", "train", "train", "train", "train", "train", "train", "validation", "test")

    started, cpu = time.perf_counter(), time.process_time()
    check = Preflight(row, max_length=1024)
    for pk, uuid, fields, completion in examples:
        check.add(pk, uuid, splits[pk % 10], spec, fields, completion, None)
    report = check.finish()
    whole, whole_cpu = time.perf_counter() - started, time.process_time() - cpu

    turns = chat_turns(spec)
    template = ChatTemplate(CHATML, config)
    started, cpu = time.perf_counter(), time.process_time()
    texts = [template.render(turns(fields, completion))[0] for _, _, fields, completion in examples]
    render, render_cpu = time.perf_counter() - started, time.process_time() - cpu

    tokenizer = Tokenizer.from_str(row.tokenizer_json)
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, N, BATCH):
        tokenizer.encode_batch(texts[start : start + BATCH], add_special_tokens=False)
    encode, encode_cpu = time.perf_counter() - started, time.process_time() - cpu
    load = os.getloadavg()[0]

    print(
        f"   preflight {N:,} examples: {N / whole:,.0f} rec/s wall ({whole:.1f} s), {1e6 * whole_cpu / N:.0f} µs CPU/"
        f"record ({N / whole_cpu:,.0f} records per CPU second) · {report['tokens'] / N:,.0f} tokens/example · "
        f"trained share {report['trained_share']:.1%} · over 1024: {report['over_length']:,}"
    )
    print(
        f"   of which: sandboxed render {N / render:,.0f} rec/s wall, {1e6 * render_cpu / N:.0f} µs CPU/record · "
        f"encode_batch {N / encode:,.0f} rec/s wall, {1e6 * encode_cpu / N:.0f} µs CPU/record (all threads) · "
        f"load average {load:.1f} on {os.cpu_count()} cores"
    )
