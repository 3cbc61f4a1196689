"""Each example stores its prompt's MinHash signature beside its prompt hash, written where the hash is (a save, an
import on SQLite with bulk_create, on PostgreSQL with COPY): an export's contamination check reads it instead of
signing every prompt again. The stored value must equal what the check computes from the texts."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from annotate import services
from annotate.models import Example
from annotate.quality.prompt_signature import SIZE, prompt_signature, stored
from annotate.services import example_create
from tests.factories import ExampleFactory

pytestmark = pytest.mark.django_db

LONG = "Please explain step by step how the customer can track the parcel that was shipped on Monday"
TURNS = [
    {"role": "user", "content": "My parcel left the depot on Monday and the tracking page has not moved since then"},
    {"role": "assistant", "content": "Sorry to hear that. Which carrier is it?"},
]


def signature_of(example: Example) -> bytes | None:
    value = Example.objects.values_list("prompt_signature", flat=True).get(pk=example.pk)
    return None if value is None else bytes(value)  # a memoryview on PostgreSQL


def test_one_prompt_equals_a_batch_and_short_prompts_store_nothing():
    prompts = [((LONG, "", ""), None), (("Where is it?", "", ""), None), (("Hi", "", ""), TURNS)]
    batch = stored(prompts)
    assert [len(found) for found in batch] == [SIZE, 0, SIZE]
    assert batch[0] == prompt_signature({"instruction": LONG})
    assert batch[2] == prompt_signature({"instruction": "Hi"}, TURNS)
    # a word changed keeps most values (a near duplicate), another prompt shares few
    near = prompt_signature({"instruction": LONG.replace("Monday", "Tuesday")})
    other = prompt_signature({"instruction": "Write a short poem about the sea at night and the lighthouse keeper"})
    assert sum(a == b for a, b in zip(batch[0], near, strict=True)) > 40
    assert sum(a == b for a, b in zip(batch[0], other, strict=True)) < 10


def test_a_new_example_and_a_changed_prompt_store_their_signature(task, annotator):
    example = example_create(task=task, fields={"instruction": LONG}, author=annotator)
    assert signature_of(example) == prompt_signature({"instruction": LONG})
    chat = ExampleFactory(task=task, instruction="Short")
    assert signature_of(chat) is None  # written without the service: the export signs it itself
    changed = LONG.replace("parcel", "package")
    services.example_save(
        example=Example.objects.get(pk=example.pk),
        user=annotator,
        completion="Use the tracking link in the email.",
        kind="happy",
        expected_version=Example.objects.get(pk=example.pk).version,
        fields={"instruction": changed},
    )
    assert signature_of(example) == prompt_signature({"instruction": changed})
    assert signature_of(example) != prompt_signature({"instruction": LONG})


def test_an_import_stores_each_prompts_signature(task, tmp_path):
    """On PostgreSQL the import writes with COPY (bytea as COPY text), elsewhere with bulk_create: both store it."""
    lines = [
        {"instruction": LONG, "output": "Open the tracking page."},
        {"instruction": "Where is it?", "output": "On its way."},
        {"messages": [*TURNS, {"role": "user", "content": "DHL"}, {"role": "assistant", "content": "Thanks."}]},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    call_command("import_examples", task.slug, str(path), stdout=StringIO())
    first = task.examples.get(instruction=LONG)
    assert signature_of(first) == prompt_signature({"instruction": LONG})
    assert signature_of(task.examples.get(instruction="Where is it?")) == b""
    chat = task.examples.get(instruction="DHL")
    assert signature_of(chat) == prompt_signature({"instruction": "DHL"}, chat.messages)
    assert len(signature_of(chat)) == SIZE
