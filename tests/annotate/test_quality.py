"""The quality check library (annotate.quality): each check with examples that must and must not trigger."""

import json
import random
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from annotate import quality
from annotate.quality import (
    CHECKS,
    TaskRules,
    check_example,
    check_task,
    count_tokens,
    estimate_training_cost,
    near_duplicates,
)
from annotate.quality.text import fold, fold_counted, prompt_key
from annotate.services import normalise_prompt, prompt_hash

TEXT = TaskRules(output_format="text")
SENTIMENT = TaskRules(output_format="label", labels=["positive", "negative", "neutral"])
PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
EXTRACT = TaskRules(output_format="json", json_schema=PERSON_SCHEMA)
CHAT = TaskRules(output_format="chat")

INSTRUCTION = "Answer the customer's question about their thermostat."
INPUT = (
    "My Skylark T3 shows a blinking amber light since the firmware update last night and the heating does not "
    "come on any more, what should I do?"
)
ANSWER = "Hold the reset button for ten seconds, wait for the light to turn green, then set the schedule again."


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def text_example(rules=TEXT, **overrides):
    values = {"instruction": INSTRUCTION, "context": "", "input": INPUT, "completion": ANSWER}
    values.update(overrides)
    return check_example(rules, **values)


# Normalisation and keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Hello,   World!",
        "Ｆｕｌｌ-width ＡＢＣ and Straße",
        "tabs\tand\nnew\x1flines\x0b",
        "snake_case and 3.14 — dashes…",
        "",
        "   ",
        "Ünïcödé, CAFÉ and ﬁ ligatures",
    ],
)
def test_fold_is_normalise_prompt_of_services_as_bytes(text):
    assert fold(text) == normalise_prompt(text).encode()


def test_prompt_key_equals_the_stored_prompt_hash():
    fields = {"instruction": "Reset it!", "context": "", "input": "Model T3, please."}
    messages = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}]
    folded = [fold(fields[name]) for name in ("instruction", "context", "input")]
    assert prompt_key(folded, messages) == prompt_hash(fields, messages)
    assert prompt_key(folded) == prompt_hash(fields)


# Per-example checks ----------------------------------------------------------------------------------------


def test_a_good_text_example_has_no_warnings():
    assert text_example() == []


def test_leak_triggers_for_an_output_that_is_the_input_copied():
    [leak] = text_example(completion=INPUT)
    assert leak.code == "leak"
    assert leak.message.startswith("The input already holds all the words of the completion")
    assert (leak.detail["field"], leak.detail["share"]) == ("input", 1.0)
    assert leak.detail["field_span"] == [0, len(INPUT) - 1]  # the run ends at the last word, before the "?"
    assert leak.detail["completion_span"] == [0, len(INPUT) - 1]


def test_leak_names_the_field_and_quotes_the_repeated_run():
    completion = "the heating does not come on any more, what should I do? Hold it."
    [leak] = text_example(completion=completion)
    assert leak.code == "leak"
    assert leak.message.startswith("The input already holds 12 of the 14 words of the completion")
    assert "“the heating does not come on any more, what should I do”" in leak.message
    assert leak.detail["words"] == 12
    start, end = leak.detail["field_span"]
    assert INPUT[start:end] == "the heating does not come on any more, what should I do"


def test_a_reply_that_quotes_part_of_the_message_is_not_a_leak():
    # issue 14: a reply quoting the customer repeats their words by design; only (nearly) the whole answer counts
    completion = "As you said, the heating does not come on any more, what should I do? Hold the reset button."
    assert "leak" not in codes(text_example(completion=completion))


def test_leak_from_the_context_is_named_as_the_context():
    context = "The reset button sits under the front cover; hold it for ten seconds until the light turns green."
    completion = "Open the cover. The reset button sits under the front cover; hold it for ten seconds."
    findings = text_example(context=context, completion=completion)
    assert [f.detail["where"] for f in findings if f.code == "leak"] == ["the context"]


def test_leak_ignores_case_and_punctuation():
    completion = "MY SKYLARK T3 shows a BLINKING amber-light since the firmware update; last night!"
    assert "leak" in codes(text_example(completion=completion))


def test_leak_does_not_trigger_for_yes_that_occurs_in_the_prompt():
    findings = text_example(
        instruction="Answer yes or no: is the light amber?", input="Yes, it is amber.", completion="Yes"
    )
    assert "leak" not in codes(findings)


def test_leak_does_not_trigger_for_a_short_common_phrase():
    findings = text_example(instruction="What is the answer? Say: the answer is ...", completion="The answer is 42.")
    assert "leak" not in codes(findings)


def test_leak_of_most_of_a_short_completion_triggers():
    findings = text_example(completion="Blinking amber light since the firmware update")  # 7 words, all in the input
    assert "leak" in codes(findings)


def test_leak_below_the_run_threshold_does_not_trigger():
    completion = "The amber light since the firmware update means the reset button needs ten seconds of pressure."
    assert "leak" not in codes(text_example(completion=completion))  # a 6-word run of a 16-word completion


def test_leak_in_a_label_task_ignores_the_label_listed_in_the_instruction():
    findings = check_example(
        SENTIMENT,
        instruction="Label the review as positive, negative or neutral.",
        input="Great!",
        completion="positive",
    )
    assert findings == []


def test_leak_in_a_label_task_triggers_when_the_label_is_left_in_the_text():
    review = "Stopped working after a month and the remote does nothing. Label: negative"
    [leak] = check_example(SENTIMENT, instruction="Label the review.", input=review, completion="negative")
    assert leak.code == "leak"
    assert leak.message == "The input already holds the answer, after “Label:”: “negative”"
    assert leak.detail["field_span"] == [len(review) - len("negative"), len(review)]
    assert leak.detail["completion_span"] == [0, len("negative")]


def test_a_one_word_answer_under_a_records_own_heading_is_not_a_leak():
    # "Age: 31" is the record's value, not an answer pasted in: a short answer counts only under an answer heading
    record = "Name: Ana Lima\nAge: 31\nCity: Porto"
    assert "leak" not in codes(check_example(TEXT, instruction="How old is she?", context=record, completion="31"))


def test_json_extraction_copying_a_value_is_not_a_leak_but_the_whole_answer_is():
    document = "Invoice for Anna Maria Schmidt of Lindenstrasse twelve in Berlin Mitte, aged 41 years."
    extracted = '{"name": "Anna Maria Schmidt of Lindenstrasse twelve in Berlin Mitte", "age": 41}'
    assert "leak" not in codes(check_example(EXTRACT, instruction="Extract.", input=document, completion=extracted))
    pasted = document + "\n\nExpected output: " + extracted
    [leak] = check_example(EXTRACT, instruction="Extract.", input=pasted, completion=extracted)
    assert leak.code == "leak" and "after “Expected output:”" in leak.message
    start, end = leak.detail["field_span"]
    assert pasted[start:end] == extracted[2:-1]  # from the first word to the last: name … 41


def test_json_that_does_not_parse_reports_line_and_column():
    [finding] = check_example(
        EXTRACT, instruction="Extract.", input="Anna, 41", completion='{\n  "name": "Anna"\n  "age": 41\n}'
    )
    assert finding.code == "format"
    assert "not valid JSON" in finding.message
    assert (finding.detail["line"], finding.detail["column"]) == (3, 3)


def test_json_that_parses_but_breaks_the_schema_reports_path_and_message():
    [finding] = check_example(
        EXTRACT, instruction="Extract.", input="Anna, 41", completion='{"name": "Anna", "age": "41"}'
    )
    assert finding.code == "format"
    assert finding.detail["path"] == "$.age"
    assert "'41' is not of type 'integer'" in finding.message
    assert "$.age" in finding.message


def test_json_missing_a_required_property_is_reported_at_the_top_level():
    [finding] = check_example(EXTRACT, instruction="Extract.", input="Anna", completion='{"name": "Anna"}')
    assert "top level" in finding.message and "'age' is a required property" in finding.message


def test_valid_json_has_no_warning():
    assert (
        check_example(EXTRACT, instruction="Extract.", input="Anna, 41", completion='{"name": "Anna", "age": 41}') == []
    )


def test_json_without_a_schema_only_needs_to_parse():
    rules = TaskRules(output_format="json")
    assert check_example(rules, instruction="Extract.", completion='{"anything": [1, 2]}') == []
    assert codes(check_example(rules, instruction="Extract.", completion="{'single': 'quotes'}")) == ["format"]


def test_label_differing_only_in_case_gets_its_own_helpful_message():
    [finding] = check_example(SENTIMENT, instruction="Label it.", input="I love it", completion="Positive")
    assert finding.code == "label_case"
    assert "“positive”" in finding.message and "case" in finding.message


def test_label_with_spaces_around_it_is_label_case_not_also_whitespace():
    [finding] = check_example(SENTIMENT, instruction="Label it.", input="Meh", completion=" neutral\n")
    assert finding.code == "label_case"
    assert "spaces" in finding.message


def test_an_unknown_label_is_a_format_warning_with_a_suggestion():
    [finding] = check_example(SENTIMENT, instruction="Label it.", input="Meh", completion="neutal")
    assert finding.code == "format"
    assert "not one of the labels" in finding.message and "Did you mean “neutral”?" in finding.message


def test_an_exact_label_has_no_warning():
    assert check_example(SENTIMENT, instruction="Label it.", input="I love it", completion="positive") == []


def test_empty_and_whitespace_only_completions_are_empty():
    assert codes(text_example(completion="")) == ["empty"]
    [finding] = text_example(completion=" \n\t")
    assert finding.code == "empty" and "whitespace" in finding.message


def test_very_short_is_not_an_autosave_check_any_more():
    # judged against the task's own completions, so only the task-wide scan can tell (see the "Very short" tests)
    assert codes(text_example(completion="Reset it.")) == []
    assert CHECKS["short"].scope == "task"


def test_leading_and_trailing_whitespace_are_reported():
    [finding] = text_example(completion=ANSWER + "  \n")
    assert finding.code == "whitespace"
    assert finding.message == "The completion ends with whitespace (spaces or line breaks)."
    assert finding.detail == {"leading": 0, "trailing": 3}
    assert "starts and ends" in text_example(completion=" " + ANSWER + " ")[0].message


def test_an_empty_instruction_is_a_missing_field():
    assert codes(text_example(instruction="  ")) == ["missing_field"]


def test_blocking_comes_from_the_tasks_blocking_checks():
    task = SimpleNamespace(
        output_format="text", labels=[], json_schema=None, blocking_checks=["leak"], coverage_targets={}
    )
    findings = check_example(task, instruction=INSTRUCTION, input=INPUT, completion=INPUT + " ")
    assert {f.code: f.blocking for f in findings} == {"whitespace": False, "leak": True}


def test_check_example_accepts_a_task_model_instance():
    from annotate.models import Task

    task = Task(output_format="label", labels=["yes", "no"], blocking_checks=["label_case"])
    [finding] = check_example(task, instruction="Is it on?", input="It is on", completion="Yes")
    assert (finding.code, finding.blocking) == ("label_case", True)


# Chat ------------------------------------------------------------------------------------------------------


def chat(messages, completion="Happy to help: hold the reset button for ten seconds.", instruction=""):
    return check_example(CHAT, instruction=instruction, messages=messages, completion=completion)


def test_well_formed_chat_turns_have_no_warning():
    turns = [
        {"role": "system", "content": "You are Skylark support."},
        {"role": "user", "content": "My light is amber."},
        {"role": "assistant", "content": "Since when?"},
        {"role": "user", "content": "Since the update."},
    ]
    assert chat(turns) == []
    assert chat(json.dumps(turns)) == []  # a JSON text, as a CSV import or a raw query may give it


def test_chat_turns_must_alternate_starting_with_user():
    turns = [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Anyone?"}]
    [finding] = chat(turns)
    assert finding.code == "format"
    assert "Turn 2 is “user” after “user”" in finding.message


def test_chat_last_prior_turn_must_be_the_users():
    [finding] = chat([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}])
    assert "last turn before the completion" in finding.message


def test_chat_fields_render_as_the_last_user_turn():
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}]
    assert chat(turns, instruction="My light is amber.") == []


def test_chat_system_turn_only_first_and_roles_and_content_checked():
    turns = [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Be brief."},
        {"role": "bot", "content": "?"},
        {"role": "assistant", "content": "  "},
    ]
    [finding] = chat(turns)
    problems = finding.detail["problems"]
    assert any("only the first turn" in p for p in problems)
    assert any("role “bot”" in p for p in problems)
    assert any("Turn 4 (assistant) is empty" in p for p in problems)


def test_chat_without_any_user_message_is_a_missing_field():
    assert codes(chat([{"role": "system", "content": "Be brief."}])) == ["missing_field"]
    assert codes(chat([])) == ["missing_field"]


def test_chat_turns_that_are_not_a_list_are_a_format_warning():
    assert codes(chat("not json", instruction="Hi")) == ["format"]


# Tokens and cost -------------------------------------------------------------------------------------------


def test_count_tokens_is_in_the_range_of_a_bpe_tokenizer():
    prose = (
        "The thermostat shows a blinking amber light after the firmware update, and the heating no longer starts. "
        "Hold the reset button for ten seconds, then wait until the light turns green before you set the schedule."
    )
    words = len(prose.split())
    assert 1.1 * words <= count_tokens(prose) <= 1.5 * words  # English BPE: about 1.3 tokens a word
    assert count_tokens("") == 0
    assert count_tokens("Hi") == 1
    assert 15 <= count_tokens('{"name": "Alice", "age": 30, "tags": ["a", "b"]}') <= 25
    assert 6 <= count_tokens("我喜欢机器学习") <= 10


@pytest.mark.parametrize("text", ["Hello, world!", "tabs\tand  spaces\n\nand\r", "x", ANSWER, '{"a": [1, 2]}'])
def test_count_tokens_fast_path_follows_the_documented_formula(text):
    pieces = len(re.findall(r"\w+", text)) + len(re.findall(r"[^\w\s]", text))
    assert count_tokens(text) == max(1, round(0.5 * pieces + 0.5 * len(text) / 4))
    folded, words, tokens = fold_counted(text)
    assert (folded, words, tokens) == (fold(text), len(re.findall(r"\w+", text)), count_tokens(text))


def test_estimate_training_cost():
    assert estimate_training_cost(2_000_000, price_per_million=8.0, epochs=3) == pytest.approx(48.0)
    with pytest.raises(ValueError):
        estimate_training_cost(-1, price_per_million=1.0)


# Registry --------------------------------------------------------------------------------------------------


def test_every_code_the_checks_emit_is_in_the_registry_with_title_and_description():
    expected = {
        "missing_field",
        "format",
        "label_case",
        "empty",
        "short",
        "whitespace",
        "leak",
        "duplicate",
        "near_duplicate",
        "contradiction",
        "inconsistent_prefix",
        "inconsistent_signoff",
        "length_outlier",
        "coverage",
        "unknown_tool",
        "tool_arguments",
        "tool_coverage",
        "no_call_share",
        "label_balance",
    }
    assert set(CHECKS) == expected
    assert all(check.title and check.description for check in CHECKS.values())
    choices = dict(quality.check_choices())
    assert "leak" in choices and "coverage" not in choices


# Task-wide checks ------------------------------------------------------------------------------------------


def frame(rows: list[dict]) -> pd.DataFrame:
    base = {
        "instruction": INSTRUCTION,
        "context": "",
        "input": "",
        "completion": ANSWER,
        "kind": "happy",
        "status": "approved",
    }
    return pd.DataFrame([{"id": i + 1, **base, **row} for i, row in enumerate(rows)])


def found(report, code: str) -> set:
    return set(report.findings.loc[report.findings["code"] == code, "example_id"])


def varied(i: int) -> str:
    """A question unlike the others (distinct words, so no near duplicates between them)."""
    topics = [
        "battery",
        "schedule",
        "wifi",
        "holiday mode",
        "boiler",
        "app login",
        "display",
        "sensor",
        "hub",
        "firmware",
        "warranty",
        "installation",
        "zones",
        "humidity",
        "eco mode",
        "geofencing",
        "pairing",
        "invoice",
        "shipping",
        "return",
        "noise",
        "calibration",
        "child lock",
        "frost",
        "pump",
    ]
    return f"Customer {i} asks about the {topics[i % len(topics)]}: case {i * 7919} in region {i % 13}, item {i}."


def test_exact_duplicates_differing_only_in_case_and_punctuation():
    rows = [
        {"input": "How do I reset my Skylark T3 thermostat after the firmware update?"},
        {"input": "how do i reset my skylark t3 thermostat, after the firmware update"},
        {"input": "How do I pair my Skylark hub with the new router?"},
    ]
    report = check_task(frame(rows), TEXT)
    assert found(report, "duplicate") == {1, 2}
    details = {r.example_id: r.detail for r in report.findings[report.findings.code == "duplicate"].itertuples()}
    assert {k: d["size"] for k, d in details.items()} == {1: 2, 2: 2}
    assert {k: d["other_id"] for k, d in details.items()} == {1: 2, 2: 1}  # each names the other


def test_an_apostrophe_typed_or_left_out_is_the_same_prompt():
    # issue 14: "What's" against "whats" was missed (the apostrophe folded to a space, splitting the word)
    rows = [{"input": "What's the warranty on the T3?"}, {"input": "whats the warranty on the T3"}]
    assert found(check_task(frame(rows), TEXT), "duplicate") == {1, 2}
    assert fold("What’s") == fold("whats") == b"whats"


def test_the_stored_prompt_hash_is_used_when_given():
    rows = [{"input": "one prompt", "prompt_hash": "ab" * 32}, {"input": "another prompt", "prompt_hash": "ab" * 32}]
    assert found(check_task(frame(rows), TEXT), "duplicate") == {1, 2}


def test_near_duplicate_with_one_word_changed_in_a_twenty_word_prompt():
    prompt = (
        "My Skylark T3 thermostat shows a blinking amber light since the firmware update "
        "and the heating will not start again"
    )
    changed = prompt.replace("amber", "orange")
    assert len(prompt.split()) == 20
    rows = [{"input": prompt}, {"input": changed}, {"input": varied(3)}]
    report = check_task(frame(rows), TEXT)
    assert found(report, "near_duplicate") == {1, 2}
    assert found(report, "duplicate") == set()
    message = report.for_example(1)[0].message
    assert message.startswith("Nearly the same prompt as 1 other example")


def test_near_duplicates_need_every_field_alike_not_only_a_shared_context():
    passage = " ".join(
        f"Sentence {i} of the shared manual explains the {i}th setting of the thermostat." for i in range(30)
    )
    rows = [
        {"context": passage, "input": "How do I change the temperature unit to Fahrenheit?"},
        {"context": passage, "input": "Why does the display turn off after ten seconds at night?"},
    ]
    assert found(check_task(frame(rows), TEXT), "near_duplicate") == set()


def test_different_prompts_are_not_near_duplicates():
    report = check_task(frame([{"input": varied(i)} for i in range(40)]), TEXT)
    assert found(report, "near_duplicate") == set()
    assert found(report, "duplicate") == set()


def test_short_prompts_differing_by_a_word_are_not_near_duplicates():
    rows = [{"instruction": "What is the capital of France?"}, {"instruction": "What is the capital of Spain?"}]
    assert found(check_task(frame(rows), TEXT), "near_duplicate") == set()


def test_two_approved_completions_for_one_prompt_that_disagree_are_a_contradiction():
    rows = [
        {"input": "Does the T3 work with heat pumps?", "completion": "Yes, the T3 supports heat pumps."},
        {"input": "does the T3 work with heat pumps", "completion": "No, the T3 only supports gas boilers."},
        {"input": "Does the T3 work with heat pumps?", "completion": "No, it does not.", "status": "submitted"},
    ]
    report = check_task(frame(rows), TEXT)
    assert found(report, "contradiction") == {1, 2}
    assert "1 other approved example with the same prompt has a different completion." in [
        f.message for f in report.for_example(1)
    ]


def test_agreeing_approved_duplicates_are_not_a_contradiction():
    rows = [
        {"input": "Does the T3 work with heat pumps?", "completion": "Yes, the T3 supports heat pumps."},
        {"input": "does the T3 work with heat pumps", "completion": "Yes — the T3 supports heat pumps!"},
    ]
    report = check_task(frame(rows), TEXT)
    assert found(report, "contradiction") == set()
    assert found(report, "duplicate") == {1, 2}


def test_near_duplicate_prompts_with_different_approved_answers_are_a_contradiction():
    prompt = "Can the Skylark T3 thermostat control an electric underfloor heating system in a bathroom of my flat"
    rows = [
        {"input": prompt, "completion": "Yes, with the relay kit."},
        {"input": prompt.replace("flat", "house"), "completion": "No, it cannot."},
    ]
    report = check_task(frame(rows), TEXT)
    assert found(report, "contradiction") == {1, 2}
    assert report.for_example(1)[-1].detail["basis"] == "nearly the same prompt"


def test_per_example_checks_run_for_every_row_of_the_task():
    rows = [{"input": INPUT, "completion": INPUT}, {"input": varied(1), "completion": "Fine. "}]
    report = check_task(frame(rows), TEXT)
    assert found(report, "leak") == {1}
    assert found(report, "whitespace") == {2}
    assert found(check_task(frame(rows), TEXT, per_example=False), "leak") == set()


def test_a_greeting_most_completions_share_is_missing_from_one():
    rows = [{"input": varied(i), "completion": f"Hi there! {ANSWER} ({i})"} for i in range(24)]
    rows[5]["completion"] = f"{ANSWER} ({5})"
    rows[8]["completion"] = f"Hello Clara! {ANSWER}"  # another greeting: the same kind of opening
    report = check_task(frame(rows), TEXT)
    assert found(report, "inconsistent_prefix") == {6}
    [finding] = report.for_example(6)
    assert finding.message == "96% of completions open with a greeting such as “Hi there!”; this one has no opening."
    assert (finding.detail["typical"], finding.detail["typical_share"]) == ("Hi there!", 0.958)


def test_filler_openers_are_flagged_where_the_task_has_no_opening():
    rows = [{"input": varied(i), "completion": f"{ANSWER} ({i})"} for i in range(30)]
    rows[3]["completion"] = "Sure! " + rows[3]["completion"]
    rows[4]["completion"] = "Great question! " + rows[4]["completion"]
    report = check_task(frame(rows), TEXT)
    assert found(report, "inconsistent_prefix") == {4, 5}
    [finding] = report.for_example(4)
    assert finding.message == "“Sure!” is filler: 93% of completions in this task do not open with such a phrase."
    assert (finding.detail["typical"], finding.detail["typical_share"]) == ("no opening phrase", 0.933)


def test_greetings_of_letters_and_code_first_lines_are_content_not_unusual_openings():
    # issue 14: a varied task flagged "Dear Hannah Reid," and a function's first line as unusual openings
    rows = [{"input": varied(i), "completion": f"{ANSWER} ({i})"} for i in range(30)]
    rows[1]["completion"] = "Dear Hannah Reid,\nThank you for your letter of 3 May."
    rows[2]["completion"] = "Hello!\nHow can I help you today?"
    rows[3]["completion"] = "function total(items) {\n  return items.length;\n}"
    rows[4]["completion"] = "Happy birthday, Sam! May the year be kind to you."
    report = check_task(frame(rows), TEXT)
    assert found(report, "inconsistent_prefix") == set()


def test_answers_starting_with_however_or_yes_are_not_openers():
    rows = [{"input": varied(i), "completion": f"{ANSWER} ({i})"} for i in range(30)]
    rows[1]["completion"] = "However, " + ANSWER
    rows[2]["completion"] = "Yes, " + ANSWER
    assert found(check_task(frame(rows), TEXT), "inconsistent_prefix") == set()


def test_a_sign_off_most_completions_share_is_missing_from_one():
    rows = [{"input": varied(i), "completion": f"{ANSWER} ({i})\n\nBest regards,\nSkylark Support"} for i in range(25)]
    rows[7]["completion"] = ANSWER
    rows[9]["completion"] = f"{ANSWER}\n\nThanks,\nTom"
    report = check_task(frame(rows), TEXT)
    assert found(report, "inconsistent_signoff") == {8, 10}
    [finding] = report.for_example(8)
    assert "“Best regards, Skylark Support”" in finding.message
    assert (finding.detail["typical"], finding.detail["typical_share"]) == ("Best regards, Skylark Support", 0.92)


def test_only_filler_sign_offs_are_flagged_where_the_task_has_none():
    # issue 14: "Only 1% of completions end with 'return sum'": a letter's or a poem's ending is content
    rows = [{"input": varied(i), "completion": f"{ANSWER} ({i})"} for i in range(30)]
    rows[1]["completion"] = "Dear Ana,\nthe keys are at reception.\n\nYours sincerely,\nDaniel Mwangi"
    rows[2]["completion"] = "def add(a, b):\n    total = a + b\n    return sum"
    rows[3]["completion"] = ANSWER + " Hope this helps!"
    report = check_task(frame(rows), TEXT)
    assert found(report, "inconsistent_signoff") == {4}
    assert report.for_example(4)[0].message == (
        "“Hope this helps!” is filler: 97% of completions in this task do not end with such a phrase."
    )


def test_no_consistency_warnings_below_the_minimum_number_of_completions():
    rows = [{"input": varied(i), "completion": f"Hi there! {ANSWER}"} for i in range(10)] + [{"input": "x y"}]
    assert found(check_task(frame(rows), TEXT), "inconsistent_prefix") == set()


def test_length_outliers_on_both_sides():
    rows = [{"input": varied(i), "completion": f"{ANSWER} Case {i}."} for i in range(40)]
    rows[0]["completion"] = "Reset."
    rows[1]["completion"] = ANSWER * 30
    report = check_task(frame(rows), TEXT)
    assert found(report, "length_outlier") == {1, 2}
    [long] = [f for f in report.for_example(2) if f.code == "length_outlier"]
    assert long.message == "Unusually long: 570 words; most in this task have 21–21 (median 21)."
    assert long.detail["typical_words"] == 21
    [short] = [f for f in report.for_example(1) if f.code == "length_outlier"]
    assert short.message.startswith("Unusually short: 1 word;")


def test_a_cluster_of_short_answers_is_a_kind_of_answer_not_an_outlier():
    # one-word answers ("3", "aaab") beside long ones: the task has them, so none stands alone at the bottom
    rows = [{"input": varied(i), "completion": f"{ANSWER} Case {i}."} for i in range(40)]
    for i in (0, 1, 2):
        rows[i]["completion"] = ["3", "aaab", "True"][i]
    assert found(check_task(frame(rows), TEXT), "length_outlier") == set()


def test_no_length_outliers_in_an_even_task_or_a_label_task():
    rows = [{"input": varied(i), "completion": f"{ANSWER} Case {i}." + " More." * (i % 5)} for i in range(40)]
    assert found(check_task(frame(rows), TEXT), "length_outlier") == set()
    labels = [{"input": varied(i), "completion": "positive" if i else "neutral"} for i in range(40)]
    assert found(check_task(frame(labels), SENTIMENT), "length_outlier") == set()


def test_coverage_below_the_leads_target_is_a_task_finding():
    rules = TaskRules(output_format="text", coverage_targets={"negative": 0.1, "edge": 0.05})
    rows = [{"input": varied(i), "kind": "negative" if i < 2 else ("edge" if i < 6 else "happy")} for i in range(40)]
    report = check_task(frame(rows), rules)
    [coverage] = report.task_findings
    assert coverage.code == "coverage"
    assert coverage.message == "Negative examples are 5% of 40 (target at least 10%): about 3 more would reach it."
    assert report.totals["kinds"] == {"happy": 34, "edge": 4, "negative": 2, "ambiguous": 0}


def test_rejected_examples_count_for_duplicates_but_not_for_coverage():
    rules = TaskRules(output_format="text", coverage_targets={"negative": 0.1})
    rows = [{"input": varied(i), "kind": "negative" if i < 4 else "happy"} for i in range(40)]
    for row in rows[:2]:
        row["status"] = "rejected"
    rows.append({"input": varied(0), "status": "submitted"})
    report = check_task(frame(rows), rules)
    assert report.totals["in_play"] == 39 and report.totals["kinds"]["negative"] == 2
    assert [f.code for f in report.task_findings] == ["coverage"]
    assert found(report, "duplicate") == {1, 41}


def test_label_balance_flags_a_rare_label_and_counts_near_misses_under_their_label():
    completions = ["positive"] * 20 + ["negative"] * 16 + ["Neutral"] * 3 + ["neutral"]
    rows = [{"input": varied(i), "completion": c} for i, c in enumerate(completions)]
    report = check_task(frame(rows), SENTIMENT)
    assert report.totals["labels"] == {"positive": 20, "negative": 16, "neutral": 4}
    [balance] = report.task_findings
    assert balance.code == "label_balance" and "“neutral” is 10% of the labelled examples" in balance.message
    assert found(report, "label_case") == {37, 38, 39}


def test_token_totals_and_counts():
    rows = [
        {"input": "Reset please.", "completion": "Hold the button."},
        {"input": "x", "completion": "", "status": "draft"},
    ]
    report = check_task(frame(rows), TEXT)
    assert report.totals["examples"] == 2 and report.totals["approved"] == 1
    assert report.totals["completion_tokens"] == count_tokens("Hold the button.")
    assert report.totals["prompt_tokens"] == 2 * count_tokens(INSTRUCTION) + count_tokens("Reset please.") + 1
    assert report.counts()["empty"] == 1


def test_check_task_takes_a_stream_of_chunks_and_gives_the_same_report():
    rows = [{"input": varied(i % 20), "completion": f"{ANSWER} {i % 3}"} for i in range(60)]
    whole = check_task(frame(rows), TEXT)
    data = frame(rows)
    chunked = check_task((data.iloc[i : i + 7] for i in range(0, 60, 7)), TEXT)
    key = ["example_id", "code", "message"]
    pd.testing.assert_frame_equal(
        whole.findings[key].sort_values(key).reset_index(drop=True),
        chunked.findings[key].sort_values(key).reset_index(drop=True),
    )
    assert whole.totals == chunked.totals


def test_check_task_of_nothing_is_an_empty_report():
    report = check_task(pd.DataFrame({"id": [], "instruction": [], "completion": []}), TEXT)
    assert report.findings.empty and report.totals["examples"] == 0 and report.task_findings == []


def test_chat_task_rows_read_messages_from_a_list_or_json_text():
    turns = [{"role": "user", "content": "My Skylark T3 thermostat shows a blinking amber light since the update"}]
    rows = [
        {"instruction": "", "messages": turns, "completion": "Hold the reset button for ten seconds."},
        {"instruction": "", "messages": json.dumps(turns), "completion": "Hold the reset button for ten seconds."},
        {"instruction": "", "messages": [], "completion": "Hello."},
    ]
    report = check_task(frame(rows), CHAT)
    assert found(report, "duplicate") == {1, 2}
    assert found(report, "missing_field") == {3}


# MinHash internals -----------------------------------------------------------------------------------------


def _bigram_jaccard(a: list[str], b: list[str]) -> float:
    pairs_a, pairs_b = set(zip(a, a[1:], strict=False)), set(zip(b, b[1:], strict=False))
    return len(pairs_a & pairs_b) / len(pairs_a | pairs_b)


def test_signature_similarity_estimates_the_word_pair_jaccard():
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(5000)]
    pairs = []
    for _ in range(300):
        a = rng.choices(vocabulary, k=rng.choice([12, 30, 80]))
        b = list(a)
        for _ in range(rng.randint(0, len(a) // 2)):
            b[rng.randrange(len(b))] = rng.choice(vocabulary)
        pairs.append((a, b))
    segments = [" ".join(words).encode() for pair in pairs for words in pair]
    rows = np.arange(len(segments))
    signature = near_duplicates.signatures(segments, rows, np.zeros(len(segments), dtype=np.int64), len(segments))
    estimate = near_duplicates.similarity(signature, rows[0::2], rows[1::2])
    error = estimate - np.array([_bigram_jaccard(a, b) for a, b in pairs])
    assert abs(error.mean()) < 0.02  # unbiased
    assert error.std() < 0.08  # 64 permutations: about 0.06 around 0.5
    assert np.abs(error).max() < 0.25


def test_near_duplicate_groups_are_transitive():
    base = [f"word{i}" for i in range(40)]
    a, b, c = list(base), list(base), list(base)
    b[10] = "changed"
    c[10], c[30] = "changed", "again"
    far = [f"other{i}" for i in range(40)]
    segments = [" ".join(words).encode() for words in (a, far, b, c)]
    signature = near_duplicates.signatures(segments, np.arange(4), np.zeros(4, dtype=np.int64), 4)
    group, best = near_duplicates.groups(signature)
    assert group.tolist() == [0, 1, 0, 0]
    assert best[1] == 0 and min(best[[0, 2, 3]]) >= near_duplicates.NEAR_DUP_THRESHOLD


def test_required_fields_are_those_outside_optional_sections():
    from annotate.rendering import required_fields

    assert required_fields("[[Context: {context}\n]]Q: {instruction}\nInput: {input}\nA:") == ("instruction", "input")
    assert required_fields("{instruction} {instruction}") == ("instruction",)
    assert required_fields("no fields {{literal}}") == ()


def test_missing_field_names_each_required_field_that_is_empty():
    task = TaskRules(output_format="text")
    findings = check_example(task, instruction="Say hi", input=" ", completion="Hello there, friend of mine.",
                             required=("instruction", "input"))  # fmt: skip
    assert [(f.code, f.detail.get("field")) for f in findings if f.code == "missing_field"] == [
        ("missing_field", "input")
    ]
    assert not [f for f in check_example(task, instruction="Say hi", input="x", completion="Hello there, friend.",
                                         required=("instruction", "input")) if f.code == "missing_field"]  # fmt: skip
