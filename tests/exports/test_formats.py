"""Each export format, from tricky examples to files: every record passes its format module's check AND a second,
independent reading written here from the trainers' documented rules (not from the module)."""

import json
from hashlib import sha256
from traceback import walk_tb

import pytest

from annotate.models import PromptTemplate
from annotate.rendering import TemplateSpec, render_record
from exports import services
from exports.formats import FORMATS
from pairsmith.jobs import JobState

from .conftest import approve, build, read_lines, version_folder

pytestmark = pytest.mark.django_db

SYSTEM = 'You are the "parcel" bot.\nBe brief.'
# Every kind of text the export tests use: accents and emoji, CJK, quotes and backslashes, line breaks (LF, CRLF, a
# lone CR and the Unicode separators), markup, JSON-looking text, an empty context, chat turns.
TRICKY = [
    {"instruction": "Où est mon colis ? 📦", "context": "", "completion": "Il arrive « demain »."},
    {"instruction": "包裹在哪里？", "context": "订单已发货。", "completion": "明天到。"},
    {"instruction": 'He said "hi" \\ then left', "context": "Line one\nLine two\r\nLine three\rend",
     "completion": 'Quote: "ok" and \\n literally'},
    {"instruction": "Para\u2028sep\u2029end", "context": "   ", "completion": "<b>bold</b> [x](javascript:alert(1))"},
    {"instruction": '{"looks": "like json"}', "context": "", "completion": '{"answer": [1, 2, 3]}'},
]  # fmt: skip
TURNS = [{"role": "user", "content": "Hi 👋"}, {"role": "assistant", "content": "Hello!\nHow can I help?"}]


@pytest.fixture
def tricky(task):
    task.system_prompt = SYSTEM
    task.save()
    examples = []
    for i, values in enumerate(TRICKY):
        examples += approve(task, 1, start=i, **values)
    examples += approve(task, 1, start=50, instruction="And now?", messages=TURNS)
    own_system = [{"role": "system", "content": "Own system turn"}, *TURNS]
    examples += approve(task, 1, start=51, instruction="Again?", messages=own_system)
    examples += approve(task, 20, start=100)
    return examples


# --- independent readings of each trainer's documented rules ---------------------------------------------------


def read_openai_chat(record) -> list[tuple[str, str]]:
    """OpenAI fine-tuning guide: {"messages": [{role, content}...]}, roles system/user/assistant, the last one the
    assistant's."""
    assert list(record) == ["messages"]
    turns = []
    for message in record["messages"]:
        assert sorted(message) == ["content", "role"]
        assert message["role"] in ("system", "user", "assistant")
        assert isinstance(message["content"], str) and message["content"].strip()
        turns.append((message["role"], message["content"]))
    assert turns[-1][0] == "assistant"
    return turns


def read_messages(record) -> list[tuple[str, str]]:
    """TRL conversational / Axolotl chat_template, as chat templates take it: optional system first, then user and
    assistant alternating from the user's, ending with the assistant's."""
    turns = read_openai_chat(record)
    body = turns[1:] if turns[0][0] == "system" else turns
    assert [role for role, _ in body] == ["user", "assistant"] * (len(body) // 2)
    return turns


def read_sharegpt(record) -> list[tuple[str, str]]:
    """LLaMA-Factory data/README.md: conversations of {from, value}; human/observation at odd positions (1, 3, ...),
    gpt/function_call at even ones; the system prompt is its own column."""
    assert list(record) == ["conversations", "system"]
    assert isinstance(record["system"], str)
    turns = [("system", record["system"])] if record["system"] else []
    conversations = record["conversations"]
    assert len(conversations) % 2 == 0 and conversations
    for position, turn in enumerate(conversations, 1):
        assert sorted(turn) == ["from", "value"]
        assert turn["from"] in (("human", "observation") if position % 2 else ("gpt", "function_call"))
        assert turn["value"].strip()
        turns.append(({"human": "user", "gpt": "assistant"}[turn["from"]], turn["value"]))
    return turns


def read_prompt_completion(record) -> tuple[str, str]:
    assert list(record) == ["prompt", "completion"]
    assert all(isinstance(value, str) for value in record.values()) and record["completion"].strip()
    return record["prompt"], record["completion"]


def read_alpaca(record) -> tuple[str, str, str]:
    assert list(record) == ["instruction", "input", "output"]
    assert all(isinstance(value, str) for value in record.values()) and record["output"].strip()
    return record["instruction"], record["input"], record["output"]


READERS = {
    "openai-chat": read_openai_chat,
    "messages": read_messages,
    "sharegpt": read_sharegpt,
    "prompt-completion": read_prompt_completion,
    "alpaca": read_alpaca,
}


def test_every_registered_format_has_a_reader_here():
    from exports.formats import PAIR_FORMATS  # preference pairs: read in tests/preferences/test_export.py

    assert set(FORMATS) - PAIR_FORMATS == set(READERS)


@pytest.mark.parametrize("export_format", list(READERS))
def test_tricky_examples_export_and_pass_both_readings(task, lead, tricky, export_format):
    export = build(task, export_format=export_format, user=lead, validation_ratio=0.3, test_ratio=0.2)
    assert export.state == JobState.SUCCEEDED, export.error
    folder = version_folder(export)
    manifest = json.loads((folder / "manifest.json").read_text())
    by_uuid = {str(e.uuid): e for e in tricky}
    seen = 0
    for split in ("train", "validation", "test"):
        records = read_lines(folder / f"{split}.jsonl")
        entries = manifest["examples"][f"{split}.jsonl"]
        assert len(records) == len(entries) == export.counts[split]
        for (_, uuid, _, _), record in zip(entries, records, strict=True):
            assert FORMATS[export_format].problem(record) is None
            reading = READERS[export_format](record)
            example = by_uuid[uuid]
            template = PromptTemplate.objects.get(pk=example.template_id)
            chat = render_record(
                TemplateSpec.of(template),
                "openai-chat",
                fields=example.prompt_fields(),
                completion=example.completion,
                messages=example.messages or None,
            )
            if export_format in ("messages", "sharegpt"):  # the same conversation as openai-chat, read back
                assert reading == [(m["role"], m["content"]) for m in chat["messages"]]
            completion = reading[-1][1] if isinstance(reading, list) else reading[-1]
            assert completion == example.completion  # byte for byte, after a JSON round trip
            seen += 1
    assert seen == len(tricky)
    assert export.counts["test"] > 0 and export.counts["validation"] > 0


def test_sharegpt_carries_the_system_prompt_in_its_column_and_writes_dataset_info(task, lead, tricky):
    export = build(task, export_format="sharegpt", user=lead, validation_ratio=0.3, test_ratio=0.2)
    folder = version_folder(export)
    records = [r for split in ("train", "validation", "test") for r in read_lines(folder / f"{split}.jsonl")]
    systems = {r["system"] for r in records}
    assert systems == {SYSTEM, "Own system turn"}  # an example's own system turn replaces the task's
    assert all(r["conversations"][0]["from"] == "human" for r in records)
    info = json.loads((folder / "dataset_info.json").read_text())
    assert info == {
        f"support_{split}": {
            "file_name": f"{split}.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system"},
        }
        for split in ("train", "validation", "test")
    }
    assert (
        export.files["dataset_info.json"]["sha256"] == sha256((folder / "dataset_info.json").read_bytes()).hexdigest()
    )
    summary = services.export_summary(export=export)
    assert summary["files"]["dataset_info"].endswith("/dataset_info.json") and "dataset_info" in summary["sha256"]


def test_only_sharegpt_writes_dataset_info(task, lead):
    approve(task, 5)
    export = build(task, export_format="messages", user=lead)
    assert not (version_folder(export) / "dataset_info.json").exists()
    assert "dataset_info" not in services.export_summary(export=export)["files"]


@pytest.mark.parametrize(
    ("export_format", "turns", "reason"),
    [
        ("sharegpt", [{"role": "assistant", "content": "Hi"}],
         "turn 1 is from 'gpt'; at an odd position LLaMA-Factory takes only human or observation"),
        ("messages", [{"role": "assistant", "content": "Hi"}],
         "message 2 is the assistant's; the conversation must start with the user's turn"),
        ("sharegpt", [{"role": "user", "content": "Hi"}, {"role": "system", "content": "late"}],
         "turn 2 is from 'system'; at an even position LLaMA-Factory takes only function_call or gpt"),
        ("messages", [{"role": "user", "content": "Hi"}, {"role": "system", "content": "late"}],
         "message 3 is a system message; only the first message may be one"),
        ("messages", [{"role": "user", "content": "Hi"}],
         "messages 2 and 3 are both the user's; user and assistant must alternate"),
    ],
)  # fmt: skip
def test_a_conversation_the_trainer_cannot_read_fails_the_export_naming_the_example(
    task, lead, export_format, turns, reason
):
    task.system_prompt = "Sys"
    task.save()
    approve(task, 3)
    (bad,) = approve(task, 1, start=10, messages=turns)
    export = build(task, export_format=export_format, user=lead)
    assert export.state == JobState.FAILED
    assert export.problems == [{"example": bad.pk, "uuid": str(bad.uuid), "reason": reason}]
    assert str(bad.uuid) in export.error and "1 record failed the format checks" in export.error
    assert not version_folder(export).exists()


MESSAGE = {"role": "user", "content": "Q"}
REPLY = {"role": "assistant", "content": "A"}


@pytest.mark.parametrize(
    ("export_format", "record", "problem"),
    [
        ("messages", {"messages": [MESSAGE, REPLY]}, None),
        ("messages", {"messages": [{"role": "system", "content": "S"}, MESSAGE, REPLY]}, None),
        ("messages", {"messages": [MESSAGE, REPLY], "tools": []}, None),  # a tools task's record
        ("messages", {"messages": [MESSAGE, REPLY], "extra": []}, "unknown keys extra"),
        ("messages", {"messages": [MESSAGE]}, "the last message is not the assistant's"),
        ("messages", {"messages": [MESSAGE, REPLY, REPLY]},
         "messages 2 and 3 are both the assistant's; user and assistant must alternate"),
        ("messages", {"messages": [MESSAGE, REPLY | {"content": "\n"}]}, "message 2 (assistant) has empty content"),
        ("sharegpt", {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}], "system": ""},
         None),
        ("sharegpt", {"conversations": [{"from": "human", "value": "Q"}], "system": ""},
         "1 turns: LLaMA-Factory needs an even number, ending with the model's (gpt) turn"),
        ("sharegpt", {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]},
         "missing keys system"),
        ("sharegpt", {"system": "", "conversations": []}, "keys out of order, expected conversations, system"),
        ("sharegpt", {"conversations": [], "system": ""}, "conversations is not a non-empty list"),
        ("sharegpt", {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": " "}], "system": ""},
         "turn 2 (gpt) has empty value"),
        ("sharegpt", {"conversations": [{"from": "human", "value": "Q", "x": 1}], "system": ""},
         "turn 1 must have exactly from and value (differs in: x)"),
        ("sharegpt", {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}], "system": 3},
         "system is not a string"),
        ("sharegpt", {"conversations": [{"from": "observation", "value": "r"}, {"from": "function_call", "value": "c"}],
                      "system": ""}, None),
    ],
)  # fmt: skip
def test_record_checks_of_the_new_formats(export_format, record, problem):
    assert FORMATS[export_format].problem(record) == problem
    assert FORMATS[export_format].record_ok(record) == (problem is None)


@pytest.mark.parametrize("export_format", list(READERS))
def test_template_preview_renders_every_format(export_format):
    """The template preview renders through the same modules (annotate.rendering keeps its API)."""
    from annotate.rendering import EXPORT_FORMATS, preview_record

    spec = TemplateSpec(prompt_format="Q: {instruction}\n", chat_user_format="{instruction}", alpaca_input_format="")
    record = preview_record(spec, export_format, fields={"instruction": "Hi"}, completion="Yo")
    assert export_format in EXPORT_FORMATS
    READERS[export_format](record)


@pytest.mark.parametrize("export_format", list(READERS))
@pytest.mark.parametrize("system", ["", SYSTEM, "  "])
@pytest.mark.parametrize(
    "user_format", ["[[Context:\n{context}\n\n]]Q: {instruction}", "[[{context}]]", "{instruction}\n{input}"]
)
def test_a_plain_records_line_from_its_texts_is_the_rendered_records_json(export_format, system, user_format):
    """The export writes a plain record's line straight from its texts (the format's line_renderer): the same bytes
    as the record the renderer makes, encoded whole, for any text; None where the record is not plain (prior turns, a
    reasoning) or would not be plainly valid, so that the full path renders it and names the problem."""
    import orjson

    module = FORMATS[export_format]
    spec = TemplateSpec(
        prompt_format=user_format, chat_user_format=user_format, alpaca_input_format=user_format, system_message=system
    )
    render, line = module.renderer(spec), module.line_renderer(spec)
    if line is None:  # a blank system prompt: every record the full way
        assert module.USES_TURNS and system.isspace()
        return
    texts = [*(value for row in TRICKY for value in row.values()), "  ", "", "tab\tnul\x00\x1f\x7f", "\ud7ff 🚚"]
    made = 0
    for position, instruction in enumerate(texts):
        for context in ("", "  ", texts[(position * 7) % len(texts)]):
            for completion in (texts[(position * 3) % len(texts)], "  ", "", "Fine."):
                fields = {"instruction": instruction, "context": context, "input": texts[position % 5]}
                record = render(fields, completion, None, None)
                fast = line(fields, completion, None, None)
                if fast is not None:
                    made += 1
                    assert module.record_ok(record) and fast == orjson.dumps(record)
                elif module.record_ok(record):  # the full path only when the text path cannot say yes
                    assert module.USES_TURNS and not render_text_ok(spec, fields)
                else:
                    assert module.problem(record)
                if module.USES_TURNS:  # prior turns: the full way (other formats are never given them)
                    assert line(fields, completion, TURNS, None) is None
                assert line(fields, completion, None, "Because.") is None  # a reasoning: the full way
    assert made >= 20  # the text path was taken, not only refused


def render_text_ok(spec: TemplateSpec, fields) -> bool:
    """Whether a chat record's user turn renders non-blank (the text path takes only those)."""
    from annotate.rendering import render_text

    text = render_text(spec.chat_user_format, fields)
    return bool(text) and not text.isspace()


def test_a_template_the_line_renderer_cannot_parse_is_refused_at_each_record_with_a_fresh_error():
    """A template stored before its checks existed is refused at each record, as render_text refuses it; each time a
    new error, so that refusing a million records keeps none of them alive in one traceback."""
    from annotate.rendering import TemplateError

    spec = TemplateSpec(prompt_format="[[{instruction}", chat_user_format="[[{instruction}", alpaca_input_format="")
    line = FORMATS["openai-chat"].line_renderer(spec)
    errors = []
    for _ in range(3):
        with pytest.raises(TemplateError) as caught:
            line({"instruction": "Where?", "context": "", "input": ""}, "Here.", None, None)
        errors.append(caught.value)
    assert errors[0] is not errors[1] and str(errors[0]) == str(errors[2])
    assert len(list(walk_tb(errors[2].__traceback__))) <= 3
