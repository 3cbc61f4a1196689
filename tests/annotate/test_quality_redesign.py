"""The checks redesigned in issue 14: the false alarms real data raised stay quiet, the true problems are still found,
and each finding carries its evidence (the keys the review page shows)."""

import pandas as pd
import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains

from annotate import services
from annotate.models import Example, QualityScan
from annotate.quality import CHECKS, TaskRules, check_example, check_task
from annotate.scans import scan_run
from tests.factories import ExampleFactory, TaskFactory

NEW = TaskRules(output_format="text")
QUOTES = TaskRules(output_format="text", input_reuse="quotes")
TRANSFORMS = TaskRules(output_format="text", input_reuse="transforms")
JSON = TaskRules(output_format="json")  # automatic: a JSON task transforms its input
LABEL = TaskRules(output_format="label", labels=["positive", "negative", "neutral", "mixed"])
CHAT = TaskRules(output_format="chat")


def leak(rules, **fields):
    return next((f for f in check_example(rules, **fields) if f.code == "leak"), None)


# Leak: what the real data flagged wrongly --------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "input_", "completion"),
    [
        pytest.param(
            "Fill in the blank and write out the whole sentence.",
            "The Great Fire of London broke out in the year ___.",
            "The Great Fire of London broke out in the year 1666.",
            id="fill-in-the-blank",
        ),
        pytest.param(
            "Replace the <mask> token with the right word.",
            "The quick brown fox jumps over the lazy <mask>.",
            "The quick brown fox jumps over the lazy dog.",
            id="mask",
        ),
        pytest.param(
            "Paraphrase the sentence, keeping its meaning.",
            "All flights out of the airport were cancelled on Monday morning because of the fog.",
            "Because of the fog, all flights out of the airport were cancelled on Monday morning.",
            id="paraphrase",
        ),
        pytest.param(
            "Fix the grammar and spelling. Change nothing else.",
            "The committee has approved the budget for next year's community festival.",
            "The committee has approved the budget for next year's community festival.",
            id="grammar-fix-of-a-correct-sentence",
        ),
        pytest.param(
            "Replace every person's name with <anonymized>.",
            "Maria Santos told Peter Novak that the freezer in the night shift kitchen was broken again.",
            "<anonymized> told <anonymized> that the freezer in the night shift kitchen was broken again.",
            id="anonymised",
        ),
        pytest.param(
            "Add a comment to each line of the function.",
            "def total(prices):\n    subtotal = sum(prices)\n    return round(subtotal * 1.2, 2)",
            "def total(prices):\n    # add the prices up\n    subtotal = sum(prices)\n"
            "    # add 20% VAT and round to cents\n    return round(subtotal * 1.2, 2)",
            id="code-commenting",
        ),
        pytest.param(
            "Complete the function.",
            'def is_palindrome(text):\n    """True when text reads the same backwards, ignoring case."""\n',
            'def is_palindrome(text):\n    """True when text reads the same backwards, ignoring case."""\n'
            "    text = text.lower()\n    return text == text[::-1]",
            id="code-completion",
        ),
    ],
)
def test_a_completion_that_transforms_its_input_is_not_a_leak(instruction, input_, completion):
    assert leak(TRANSFORMS, instruction=instruction, input=input_, completion=completion) is None


def test_json_extraction_of_a_key_value_record_is_not_a_leak():
    # the example: {"name": "Ana Lima", "age": 31} folds to the very words of "Name: Ana Lima, Age: 31"
    found = check_example(
        JSON,
        instruction="Extract as JSON.",
        input="Name: Ana Lima, Age: 31",
        completion='{"name": "Ana Lima", "age": 31}',
    )
    assert found == []


def test_a_support_reply_quoting_the_customer_is_not_a_leak():
    message = "My thermostat keeps resetting to 18 degrees every night at 2am."
    reply = (
        "Hi Laura,\n\nYou wrote that the thermostat keeps resetting to 18 degrees every night at 2am: that is the "
        "night setback of the default schedule. Open Schedule in the app and delete the 2:00 entry.\n\nBest regards,"
        "\nSkylark Support"
    )
    assert leak(QUOTES, instruction="Write the reply.", input=message, completion=reply) is None


def test_an_extractive_answer_over_a_context_is_not_a_leak():
    context = (
        "Returns policy. You can return most items within 30 days of delivery. Sale items can be returned within "
        "14 days. Gift cards cannot be returned."
    )
    answer = "Sale items can be returned within 14 days."
    assert leak(QUOTES, instruction="How long for a sale item?", context=context, completion=answer) is None


# Leak: true leaks are still caught ------------------------------------------------------------------------------


def test_an_answer_under_a_heading_leaks_even_where_the_task_transforms_its_input():
    instruction = "Fill in the blank. Answer: The first person to walk on the Moon was Neil Armstrong."
    completion = "The first person to walk on the Moon was Neil Armstrong."
    found = leak(TRANSFORMS, instruction=instruction, input="The first person to walk on the Moon was ___.",
                 completion=completion)  # fmt: skip
    assert found.message == (
        "The instruction already holds the answer, after “Answer:”: "
        "“The first person to walk on the Moon was Neil Armstrong”"
    )
    assert found.detail["field"] == "instruction" and found.detail["rule"] == "answer_heading"
    start, end = found.detail["field_span"]
    assert instruction[start:end] == "The first person to walk on the Moon was Neil Armstrong"
    assert found.detail["completion_span"] == [0, len(completion) - 1]


def test_a_one_word_answer_in_brackets_after_answer_leaks():
    instruction = "Name the largest desert in the world. (Answer: Antarctica)"
    found = leak(NEW, instruction=instruction, completion="Antarctica")
    start, end = found.detail["field_span"]
    assert instruction[start:end] == "Antarctica"


def test_a_tldr_left_in_the_text_leaks_from_a_summary():
    text = (
        "The ferry company will add a late sailing at 11 p.m. on Fridays and Saturdays from July.\n\n"
        "TL;DR: From July there will be an 11 p.m. ferry on Fridays and Saturdays."
    )
    found = leak(NEW, instruction="Summarise.", input=text,
                 completion="From July there will be an 11 p.m. ferry on Fridays and Saturdays.")  # fmt: skip
    assert found is not None and "after “TL;DR:”" in found.message


def test_a_draft_reply_left_in_the_record_leaks_from_a_task_that_quotes():
    context = (
        "Order 52000: Skylark Hub. Draft reply: Hi Zoe, the hub needs a 2.4 GHz network; 5 GHz networks are not "
        "supported. Please switch your router to 2.4 GHz, then try again."
    )
    completion = (
        "Hi Zoe,\n\nThe hub needs a 2.4 GHz network; 5 GHz networks are not supported. Please switch your router to "
        "2.4 GHz, then try again.\n\nBest regards,\nSkylark Support"
    )
    found = leak(QUOTES, instruction="Write the reply.", context=context, input="It won't connect.",
                 completion=completion)  # fmt: skip
    assert found is not None and found.detail["field"] == "context" and "“Draft reply:”" in found.message


def test_the_whole_context_handed_back_leaks_from_a_task_that_quotes():
    context = (
        "Trains run every 30 minutes between Portmere and Saltby from 6:00 to 23:00, and every hour on Sundays. "
        "Bicycles are carried free outside the weekday rush hours."
    )
    found = leak(QUOTES, instruction="Tell me about the bike rules.", context=context, completion=context)
    assert found is not None and found.detail["rule"] == "whole_field"
    assert found.message.startswith("The completion hands back the context whole")


def test_an_answer_in_the_instruction_leaks_where_the_task_writes_new_text():
    found = leak(NEW, instruction="Write a haiku about coffee. For example: steam curls from the cup, first sip wakes "
                 "the day.", completion="Steam curls from the cup,\nfirst sip wakes the day.")  # fmt: skip
    assert found is not None


def test_a_chat_reply_repeating_an_earlier_reply_leaks():
    reply = "Right-click the file, choose Version history, pick the version you want and click Restore."
    messages = [
        {"role": "user", "content": "How do I restore an older version?"},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "ok, and then?"},
    ]
    found = leak(CHAT, messages=messages, completion=reply)
    assert found.detail["field"] == "messages" and found.detail["turn"] == 1
    assert found.message.startswith("The completion repeats an earlier reply of the assistant (turn 2 (assistant))")
    start, end = found.detail["field_span"]
    assert reply[start:end] == reply[:-1]  # the words, without the final full stop


def test_a_label_left_in_the_review_leaks_but_the_label_list_of_the_instruction_does_not():
    instruction = "Classify the sentiment as positive, negative, neutral or mixed."
    assert leak(LABEL, instruction=instruction, input="Works fine.", completion="positive") is None
    assert leak(LABEL, instruction=instruction, input="Stopped working. Label: negative", completion="negative")


def test_the_leak_description_explains_the_task_setting():
    assert "The completion" in CHECKS["leak"].description and "Answer:" in CHECKS["leak"].description


# Very short: judged against the task's own completions ----------------------------------------------------------


def frame(rows: list[dict]) -> pd.DataFrame:
    base = {"instruction": "", "context": "", "input": "", "completion": "", "kind": "happy", "status": "approved"}
    return pd.DataFrame([{**base, "id": i, **row} for i, row in enumerate(rows, 1)])


def short_ids(report) -> set:
    return set(report.findings.loc[report.findings["code"] == "short", "example_id"])


def sentences(i: int, n: int = 12) -> str:
    return " ".join(f"word{i}x{k}" for k in range(n)) + "."


def test_a_two_word_story_is_short_where_the_task_writes_long_texts():
    rows = [{"instruction": f"Write a story about topic {i}.", "completion": sentences(i, 30)} for i in range(24)]
    rows.append({"instruction": "Write a 150-word story about a robot.", "completion": "Unit 7"})
    report = check_task(frame(rows), NEW)
    assert short_ids(report) == {25}
    [finding] = [f for f in report.for_example(25) if f.code == "short"]
    assert finding.message == "Only 2 words, where completions in this task have 30 (median)."
    assert finding.detail["typical_words"] == 30


def test_one_word_answers_to_an_instruction_that_asks_for_one_word_are_not_short():
    rows = [{"instruction": "Give only the missing word.", "input": f"Sentence {i} with a ___ in it.",
             "completion": f"word{i}"} for i in range(8)]  # fmt: skip
    rows += [{"instruction": "Fill in the blank and write out the whole sentence.", "input": f"The {i} ___ here.",
              "completion": sentences(i)} for i in range(8)]  # fmt: skip
    rows += [{"instruction": f"Write about {i}.", "completion": sentences(i)} for i in range(8)]
    rows.append({"instruction": "Fill in the blank and write out the whole sentence.",
                 "input": "The Amazon is the largest ___ in the world.", "completion": "rainforest"})  # fmt: skip
    assert short_ids(check_task(frame(rows), NEW)) == {25}


def test_a_one_word_translation_of_a_short_input_is_fine_but_a_truncated_one_is_short():
    rows = [{"instruction": "Translate into Spanish.", "input": sentences(i), "completion": sentences(i)}
            for i in range(22)]  # fmt: skip
    rows.append({"instruction": "Translate into Spanish.", "input": "Thank you.", "completion": "Gracias."})
    rows.append({"instruction": "Translate into Spanish.", "input": sentences(99, 16), "completion": "La conferencia"})
    assert short_ids(check_task(frame(rows), NEW)) == {24}


def test_a_question_may_be_answered_in_a_word_where_the_task_has_such_answers():
    rows = [{"instruction": f"How does feature {i} work?", "completion": sentences(i)} for i in range(20)]
    rows += [{"instruction": f"How many items in box {i}?", "completion": f"{i}."} for i in range(3)]
    assert short_ids(check_task(frame(rows), NEW)) == set()
    # ... but not in a task where every answer explains (a refusal task)
    refusals = [{"instruction": f"Can you do thing {i}?", "completion": sentences(i)} for i in range(20)]
    refusals.append({"instruction": "Can you lend me money?", "completion": "No."})
    assert short_ids(check_task(frame(refusals), NEW)) == {21}


def test_an_explanation_in_two_words_is_short_even_in_a_task_of_one_word_answers():
    rows = [{"instruction": f"What is the capital of country {i}?", "completion": f"City{i}"} for i in range(20)]
    rows.append({"instruction": "Explain why the sky is blue.", "completion": "Rayleigh scattering."})
    report = check_task(frame(rows), NEW)
    assert short_ids(report) == {21}
    assert "asks for an explanation" in report.for_example(21)[0].message


def test_labels_yes_no_and_json_are_never_short():
    labels = [{"instruction": "Classify.", "input": f"text {i}", "completion": "positive"} for i in range(25)]
    assert short_ids(check_task(frame(labels), LABEL)) == set()
    answers = [{"instruction": f"Extract {i}.", "input": sentences(i), "completion": '{"a": 1}'} for i in range(25)]
    assert short_ids(check_task(frame(answers), JSON)) == set()


# The task-wide scan in the app: missing fields, group evidence, the setting ----------------------------------


@pytest.mark.django_db
def test_the_scan_keeps_the_missing_fields_a_save_found(lead):
    # issue 14: the scan ran the per-example checks without the template's required fields and dropped these
    task = services.task_create(slug="sentiment", name="Sentiment", output_format="label",
                                labels=["positive", "negative"], preset="classification")  # fmt: skip
    example = ExampleFactory(task=task, instruction="Classify the review.", input="", completion="positive",
                             status="approved")  # fmt: skip
    scan = QualityScan.objects.create(task=task)
    scan_run(scan_id=scan.pk)
    example.refresh_from_db()
    assert example.warning_codes == ",missing_field,"
    assert example.warnings[0]["message"] == "The input is empty."


@pytest.mark.django_db
def test_group_findings_name_the_other_example_by_uuid_and_external_id(task):
    a = ExampleFactory(task=task, instruction="What's the warranty?", external_id="q-1", status="approved",
                       completion="Two years.")  # fmt: skip
    b = ExampleFactory(task=task, instruction="whats the warranty", external_id="q-2", status="approved",
                       completion="Five years.")  # fmt: skip
    scan = QualityScan.objects.create(task=task)
    scan_run(scan_id=scan.pk)
    warnings = {e.pk: {w["code"]: w["detail"] for w in e.warnings} for e in Example.objects.filter(task=task)}
    for this, other in ((a, b), (b, a)):
        for code in ("duplicate", "contradiction"):
            detail = warnings[this.pk][code]
            assert (detail["other_uuid"], detail["other_external_id"]) == (str(other.uuid), other.external_id)
            assert "other_id" not in detail


@pytest.mark.django_db
def test_presets_set_how_the_completion_uses_the_prompt():
    qa = services.task_create(slug="qa", name="QA", preset="qa-context")
    extraction = services.task_create(slug="ex", name="Ex", output_format="json", preset="extraction-json")
    plain = services.task_create(slug="plain", name="Plain")
    chosen = services.task_create(slug="rw", name="Rewrite", input_reuse="transforms")
    assert (qa.input_reuse, extraction.input_reuse, plain.input_reuse, chosen.input_reuse) == (
        "quotes", "transforms", "", "transforms"
    )  # fmt: skip
    assert TaskRules.of(plain).input_reuse == "new"
    assert TaskRules.of(TaskFactory.build(output_format="json", input_reuse="")).input_reuse == "transforms"


@pytest.mark.django_db
def test_the_lead_sets_how_the_completion_uses_the_prompt_in_the_task_settings(client, task, lead):
    client.force_login(lead)
    url = reverse("annotate:task_edit", args=[task.slug])
    page = client.get(url)
    assertContains(page, 'name="input_reuse"')
    assertContains(page, "Transforms the input (rewrites, fills in, completes, anonymises, extracts to JSON)")
    assertContains(page, "What the answer-leak check expects.")
    response = client.post(
        url,
        {"name": task.name, "output_format": "text", "approvals_required": "1", "validation_ratio": "0.1",
         "split_seed": "s", "input_reuse": "transforms"},
    )  # fmt: skip
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.input_reuse == "transforms"
    bad = client.post(url, {"name": task.name, "output_format": "text", "approvals_required": "1",
                            "validation_ratio": "0.1", "split_seed": "s", "input_reuse": "copies"})  # fmt: skip
    assertContains(bad, "Select a valid choice")
    task.refresh_from_db()
    assert task.input_reuse == "transforms"


def test_every_check_has_a_human_title_and_description():
    for code, check in CHECKS.items():
        assert check.title and "_" not in check.title and check.description, code


def test_filler_is_told_from_content_by_its_words():
    from annotate.quality.style import FILLER, GREETING, NONE, opening_kind

    assert [opening_kind(p) for p in ("Of course!", "Happy to help!", "Great question!", "Sure!")] == [FILLER] * 4
    assert [opening_kind(p) for p in ("Of the three,", "Happy birthday,", "Good morning,", "Dear Ana,")] == [
        NONE,
        NONE,
        GREETING,
        GREETING,
    ]


def test_a_few_truncations_in_a_large_task_are_still_length_outliers():
    # "alone at the bottom" is a share of the task (1%), so two "Fine." among 2,100 answers are both flagged,
    # while in a small task a single neighbour within twice the length makes a cluster
    rows = [{"instruction": f"Question {i}?", "completion": sentences(i, 30 + i % 7)} for i in range(2_100)]
    rows[10]["completion"] = rows[20]["completion"] = "Fine."
    report = check_task(frame(rows), NEW, near_duplicates_check=False)
    flagged = set(report.findings.loc[report.findings["code"] == "length_outlier", "example_id"])
    assert flagged == {11, 21}
