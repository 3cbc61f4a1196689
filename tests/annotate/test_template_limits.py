"""A template cannot make output of any size: its texts have a length and a placeholder limit (checked when a lead
saves it, and by the preview), and the preview refuses a record over MAX_RENDERED_RECORD_BYTES before building it."""

import tracemalloc

import orjson
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pytest_django.asserts import assertContains, assertNotContains

from annotate import rendering
from annotate.models import PromptTemplate
from annotate.rendering import (
    PRESETS,
    RecordTooLarge,
    TemplateSpec,
    preview_record,
    render_record,
    render_text,
    rendered_length,
    template_limits_error,
)
from annotate.services import template_save

from .test_lead_pages import template_post

pytestmark = pytest.mark.django_db

REPEATED = "{input}" * 10_000  # the template: 10,000 copies of the input in every record


def _saved_template(task) -> dict:
    template = PromptTemplate.objects.get(task=task)
    return {name: getattr(template, name) for name in ("prompt_format", "chat_user_format", "system_message")}


def test_saving_a_template_with_too_many_placeholders_names_the_limit_and_saves_nothing(client, task, lead):
    client.force_login(lead)
    before = _saved_template(task)
    response = client.post(
        reverse("annotate:template_edit", args=[task.slug]), template_post(task, prompt_format=REPEATED)
    )
    assert response.status_code == 200
    assertContains(
        response,
        "The prompt format has 10,000 placeholders, over the limit of 20 (MAX_TEMPLATE_PLACEHOLDERS): each one copies "
        "a whole field into every record.",
    )
    assert _saved_template(task) == before and PromptTemplate.objects.filter(task=task).count() == 1


def test_saving_a_template_text_over_the_length_limit_names_the_limit(client, task, lead, settings):
    settings.MAX_TEMPLATE_CHARS = 500
    client.force_login(lead)
    before = _saved_template(task)
    data = template_post(task, system_message="Be kind. " * 100)  # 900 characters
    response = client.post(reverse("annotate:template_edit", args=[task.slug]), data)
    assertContains(
        response, "The system message is 900 characters long, over the limit of 500 characters (MAX_TEMPLATE_CHARS)."
    )
    assert _saved_template(task) == before


def test_a_template_at_the_limits_saves(client, task, lead):
    client.force_login(lead)
    at_limit = "[[{context}\n]]" + "{input} " * 19  # 20 placeholders, optional section included
    response = client.post(
        reverse("annotate:template_edit", args=[task.slug]), template_post(task, chat_user_format=at_limit)
    )
    assert response.status_code == 302
    assert PromptTemplate.objects.get(task=task).chat_user_format == at_limit


def test_literal_braces_are_not_counted_as_placeholders():
    assert template_limits_error("prompt_format", "{{literal}} " * 50 + "{input}") is None
    assert "21 placeholders" in template_limits_error("prompt_format", "{{x}} {instruction}" * 21)


def test_the_service_refuses_what_the_form_refuses(task, lead):
    """Callers other than the form (commands, scripts) meet the same limits."""
    with pytest.raises(ValidationError) as refused:
        template_save(task=task, values={"alpaca_input_format": REPEATED}, user=lead)
    assert refused.value.message_dict == {
        "alpaca_input_format": [
            "The Alpaca input is 70,000 characters long, over the limit of 20,000 characters (MAX_TEMPLATE_CHARS). "
            "The Alpaca input has 10,000 placeholders, over the limit of 20 (MAX_TEMPLATE_PLACEHOLDERS): each one "
            "copies a whole field into every record."
        ]
    }
    assert PromptTemplate.objects.get(task=task).alpaca_input_format != REPEATED


def test_the_preview_names_a_template_over_the_limit_instead_of_rendering_it(client, task, lead):
    client.force_login(lead)
    data = template_post(task, prompt_format=REPEATED, sample_input="x" * 10_000)
    response = client.post(reverse("annotate:template_preview", args=[task.slug]), data, headers={"HX-Request": "true"})
    assertContains(response, "cannot be rendered yet")
    assertContains(response, "Prompt format: The prompt format is 70,000 characters long, over the limit of 20,000")
    assertContains(response, "The prompt format has 10,000 placeholders, over the limit of 20")
    assertNotContains(response, 'data-format="')
    assert len(response.content) < 5_000  # before the limit: 100 MB per format


def test_the_preview_refuses_a_record_over_the_size_limit(client, task, lead):
    client.force_login(lead)
    twenty = "{input}\n" * 20  # within the template limits; 20 copies of a 60,000-character input are 1.2 MB
    data = template_post(task, prompt_format=twenty, sample_input="y" * 60_000)
    response = client.post(reverse("annotate:template_preview", args=[task.slug]), data, headers={"HX-Request": "true"})
    assertContains(
        response,
        "The prompt-completion record would be at least 1,200,035 bytes, over the limit of 1,048,576 bytes "
        "(MAX_RENDERED_RECORD_BYTES); shorten the template or the fields",
    )
    assertNotContains(response, 'data-format="')
    assert len(response.content) < 5_000


def test_the_preview_still_renders_a_record_under_the_size_limit(client, task, lead, settings):
    settings.MAX_RENDERED_RECORD_BYTES = 10_000
    client.force_login(lead)
    data = template_post(task, prompt_format="{input}\n" * 3, sample_input="z" * 3_000)
    response = client.post(reverse("annotate:template_preview", args=[task.slug]), data, headers={"HX-Request": "true"})
    for fmt in ("openai-chat", "prompt-completion", "alpaca"):
        assertContains(response, f'data-format="{fmt}"')


def test_preview_record_does_not_build_a_record_it_refuses():
    """Bounded work: the size is worked out from the template's parts, so refusing a 20 MB record allocates next to
    nothing (rendering it first would hold 20 MB at its peak). tracemalloc counts allocations, not time."""
    spec = TemplateSpec(
        prompt_format="{input}" * 20, chat_user_format="{input}" * 20, alpaca_input_format="{input}" * 20
    )
    fields = {"instruction": "", "context": "", "input": "x" * 1_000_000}
    for fmt in ("prompt-completion", "openai-chat", "alpaca"):
        tracemalloc.start()
        with pytest.raises(RecordTooLarge, match=r"at least 20,000,0[0-9]{2} bytes, over the limit of 1,048,576 bytes"):
            preview_record(spec, fmt, fields=fields, completion="ok")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 1_000_000, (fmt, peak)


def test_preview_record_measures_the_json_it_would_write(settings):
    """Escapes count: 1,000 quotes are 2,000 bytes of JSON."""
    spec = TemplateSpec(prompt_format="{input}", chat_user_format="{input}", alpaca_input_format="{input}")
    fields = {"instruction": "", "context": "", "input": '"' * 1_000}
    size = len(orjson.dumps(render_record(spec, "prompt-completion", fields=fields, completion="ok")))
    settings.MAX_RENDERED_RECORD_BYTES = size
    assert preview_record(spec, "prompt-completion", fields=fields, completion="ok")
    settings.MAX_RENDERED_RECORD_BYTES = size - 1
    with pytest.raises(RecordTooLarge, match=f"would be {size:,} bytes, over the limit of {size - 1:,} bytes"):
        preview_record(spec, "prompt-completion", fields=fields, completion="ok")


TEMPLATES = [preset[key] for preset in PRESETS.values() for key in ("prompt_format", "chat_user_format")] + [
    "[[A {input} B {context}]]{{x}}[[ {instruction}]]{input}{input}",
    "plain text, no field",
]


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    template=st.sampled_from(TEMPLATES),
    values=st.fixed_dictionaries(
        {name: st.text(alphabet=st.sampled_from("ab \n\t{}[]é"), max_size=12) for name in rendering.PROMPT_FIELDS}
    ),
)
def test_rendered_length_is_the_length_of_the_rendered_text(template, values):
    assert rendered_length(template, values) == len(render_text(template, values))
