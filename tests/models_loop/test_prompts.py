"""What is sent to the model and how its answers are read: default prompts from the task, the request messages,
the judge's tolerant parse, and the change measure of a draft (bounded, linear work)."""

import pytest

from annotate import services as annotate_services
from annotate.models import Example, Task
from annotate.rendering import TemplateSpec
from models_loop import change, prompts
from models_loop.prompts import JudgeJunk, parse_judgement


@pytest.fixture
def label_task(db, lead):
    return annotate_services.task_create(
        slug="triage", name="Ticket triage", output_format="label", labels=["billing", "shipping"],
        system_prompt="You sort support tickets.", preset="classification", created_by=lead,
        guidelines="Pick the team that can act on the ticket.",
    )  # fmt: skip


def test_the_default_draft_prompt_is_built_from_the_system_prompt_guidelines_and_labels(label_task):
    prompt = prompts.default_draft_prompt(label_task)
    assert prompt.startswith("You sort support tickets.\n\nWrite the ideal answer")
    assert "Answer with exactly one of these labels and nothing else: billing, shipping." in prompt
    assert prompt.endswith("Guidelines:\nPick the team that can act on the ticket.")


def test_the_default_judge_prompt_asks_for_the_score_as_json_and_quotes_the_guidelines(label_task):
    prompt = prompts.default_judge_prompt(label_task)
    assert 'Answer only with a JSON object: {"score": <1-5>, "reason": "<one line>"}.' in prompt
    assert "The completion must be exactly one of these labels: billing, shipping." in prompt
    assert "The model being trained answers under this system prompt:\nYou sort support tickets." in prompt
    assert prompt.endswith("Guidelines:\nPick the team that can act on the ticket.")


def test_a_json_task_quotes_its_schema(db, lead):
    task = annotate_services.task_create(slug="extract", name="Extract", output_format="json", created_by=lead)
    Task.objects.filter(pk=task.pk).update(json_schema={"type": "object", "required": ["id"]})
    task.refresh_from_db()
    assert 'It must validate against this JSON Schema: {"type":"object","required":["id"]}' in (
        prompts.default_draft_prompt(task)
    )


def test_draft_messages_are_the_prompt_then_the_example_as_the_trained_model_sees_it(label_task):
    example = annotate_services.example_create(
        task=label_task, fields={"instruction": "Route this ticket.", "input": "I was charged twice."}
    )
    spec = TemplateSpec.of(example.template)
    messages = prompts.draft_messages(prompt="PROMPT", example=example, spec=spec)
    assert messages == [
        {"role": "system", "content": "PROMPT"},
        {"role": "user", "content": "Route this ticket.\n\nText: I was charged twice."},
    ]


def test_a_chat_examples_own_system_turn_is_kept_after_the_prompt(task):
    example = annotate_services.example_create(
        task=task, fields={"instruction": "And the refund?"},
        messages=[{"role": "system", "content": "You are Parcel Bot."}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello!"}],
    )  # fmt: skip
    messages = prompts.draft_messages(prompt="PROMPT", example=example, spec=TemplateSpec.of(example.template))
    assert messages[0] == {"role": "system", "content": "PROMPT\n\nYou are Parcel Bot."}
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"] == "And the refund?"


def test_judge_messages_hold_the_prompt_and_the_completion(task):
    example = Example(task=task, template=task.current_template, instruction="When does it ship?")
    messages = prompts.judge_messages(
        prompt="JUDGE", example=example, spec=TemplateSpec.of(example.template), completion="Monday."
    )
    assert messages == [
        {"role": "system", "content": "JUDGE"},
        {"role": "user", "content": "Prompt:\n[user]\nWhen does it ship?\n\nCompletion:\nMonday."},
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"score": 4, "reason": "Good."}', (4, "Good.")),
        ('```json\n{"score": 2, "reason": "Too long\\nand rude."}\n```', (2, "Too long and rude.")),
        ('Sure! Here it is: {"score": "5", "reason": "Exemplary"} Hope it helps.', (5, "Exemplary")),
        ('{"score": 3.0, "reason": ""}', (3, "(no reason given)")),
        ('{"note": {"x": 1}} {"score": "1/5", "reason": "Wrong."}', (1, "Wrong.")),
        ('{"score": 4, "reason": "' + "r" * 1000 + '"}', (4, "r" * 300)),
    ],
)
def test_the_judges_answer_is_read_tolerantly(content, expected):
    assert parse_judgement(content) == expected


@pytest.mark.parametrize(
    "content",
    ["I think it is fine.", '{"score": 7, "reason": "x"}', '{"score": true}', '{"rating": 4}', "{" * 10_000, ""],
)
def test_junk_from_the_judge_is_a_clear_error(content):
    with pytest.raises(JudgeJunk) as caught:
        parse_judgement(content)
    assert str(caught.value).startswith(
        'The model\'s answer is not a judgement (expected JSON {"score": 1-5, "reason": "..."}): '
    )


@pytest.mark.parametrize(
    ("draft", "final", "expected"),
    [
        ("It ships on Monday.", "It ships on Monday.", (1.0, "unchanged")),
        ("It ships on Monday.", "  It ships on Monday.\n", (1.0, "unchanged")),
        ("It ships on Monday.", "It ships  on\nMonday.", (1.0, "light")),
        ("Your parcel ships on Monday from Leeds.", "Your parcel ships on Tuesday from Leeds.", (0.6667, "light")),
        ("Your parcel ships on Monday.", "We refund you in full today, sorry.", (0.0, "rewritten")),
        ("Yes", "No", (0.0, "rewritten")),
    ],
)
def test_a_draft_edit_is_measured_and_categorised(draft, final, expected):
    assert change.categorise(draft, final) == expected


def test_the_change_measure_is_linear_work_on_the_largest_completions():
    # Two completions at the size limit whose words repeat (the worst case of an alignment such as difflib's): the
    # measure reads each once; its pair counters hold at most one entry per word.
    words = ["a", "b"] * 24_999
    draft, final = " ".join(words), " ".join(words[:-1] + ["c"])
    assert len(final) < annotate_services.MAX_COMPLETION_CHARS
    pairs = change._pairs(draft)
    assert sum(pairs.values()) == len(words) - 1 and len(pairs) == 2
    score, category = change.categorise(draft, final)
    assert category == "light" and score == pytest.approx(1 - 1 / (len(words) - 1), abs=1e-4)
