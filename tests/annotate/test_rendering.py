import pytest

from annotate.rendering import (
    PRESETS,
    TemplateSpec,
    render_record,
    render_text,
    template_fields_error,
)

ALPACA_STYLE = TemplateSpec(
    prompt_format=(
        "### Instruction:\n{instruction}\n\n[[### Context:\n{context}\n\n]][[### Input:\n{input}\n\n]]### Response:\n"
    ),
    chat_user_format="[[{context}\n\n]]{instruction}[[\n\n{input}]]",
    alpaca_input_format="[[{context}\n\n]]{input}",
    system_message="You are Skylark's support assistant.",
)
FIELDS = {"instruction": "Reset my thermostat", "context": "", "input": "Model S2"}


def test_prompt_completion_drops_empty_optional_sections():
    record = render_record(ALPACA_STYLE, "prompt-completion", fields=FIELDS, completion="Hold the button 10 s.")
    assert record == {
        "prompt": "### Instruction:\nReset my thermostat\n\n### Input:\nModel S2\n\n### Response:\n",
        "completion": "Hold the button 10 s.",
    }


def test_openai_chat_has_system_user_assistant_and_no_extra_keys():
    record = render_record(ALPACA_STYLE, "openai-chat", fields=FIELDS, completion="Hold it.")
    assert record == {
        "messages": [
            {"role": "system", "content": "You are Skylark's support assistant."},
            {"role": "user", "content": "Reset my thermostat\n\nModel S2"},
            {"role": "assistant", "content": "Hold it."},
        ]
    }


def test_openai_chat_without_system_message_has_no_system_turn():
    spec = TemplateSpec("{instruction}", "{instruction}", "{input}", system_message="")
    record = render_record(spec, "openai-chat", fields=FIELDS, completion="ok")
    assert [m["role"] for m in record["messages"]] == ["user", "assistant"]


def test_chat_keeps_prior_turns():
    prior = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}]
    record = render_record(ALPACA_STYLE, "openai-chat", fields=FIELDS, completion="Sure.", messages=prior)
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant", "user", "assistant"]


def test_alpaca_puts_context_into_input_the_way_the_template_says():
    fields = {**FIELDS, "context": "Plan: Plus"}
    assert render_record(ALPACA_STYLE, "alpaca", fields=fields, completion="Done") == {
        "instruction": "Reset my thermostat",
        "input": "Plan: Plus\n\nModel S2",
        "output": "Done",
    }


def test_user_text_is_data_not_template():
    fields = {"instruction": "{context} {{x}} [[y]] {instruction.__class__}", "context": "SECRET", "input": ""}
    assert render_text("{instruction}", fields) == fields["instruction"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{instruction.__class__}", "unknown placeholder {instruction.__class__} at character 1"),
        ("Hello {name}", "unknown placeholder {name} at character 7"),
        ("{instruction", "unmatched '{' at character 1"),
        ("[[{context}", "unbalanced"),
        ("[[a [[{input}]] b]]", "cannot be nested"),
    ],
)
def test_malformed_templates_are_named_precisely(text, message):
    assert message in template_fields_error(text)


def test_literal_braces_are_doubled():
    assert template_fields_error('{{"answer": {input}}}') is None
    assert render_text('{{"answer": {input}}}', {"input": "42"}) == '{"answer": 42}'


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_is_well_formed(preset):
    for key in ("prompt_format", "chat_user_format", "alpaca_input_format"):
        assert template_fields_error(PRESETS[preset][key]) is None, (preset, key)


@pytest.mark.parametrize("preset", PRESETS)
def test_no_preset_leaves_an_empty_heading_when_optional_fields_are_empty(preset):
    spec = TemplateSpec(PRESETS[preset]["prompt_format"], PRESETS[preset]["chat_user_format"], "{input}")
    fields = {"instruction": "Q?", "context": "", "input": "text"}
    for text in (render_record(spec, "prompt-completion", fields=fields, completion="A")["prompt"],):
        assert "Context" not in text and "\n\n\n" not in text, (preset, text)
