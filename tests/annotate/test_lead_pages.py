import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from annotate.models import Membership, PromptTemplate, Role, Task
from annotate.services import template_save
from tests.factories import ExampleFactory, UserFactory

User = get_user_model()

pytestmark = pytest.mark.django_db


def template_post(task, **overrides) -> dict:
    data = {
        "preset": "",
        "instruction_text": "Answer the customer.",
        "prompt_format": "### Question:\n{instruction}\n\n[[### Context:\n{context}\n\n]]### Answer:\n",
        "chat_user_format": "{instruction}",
        "alpaca_input_format": "{context}",
        "system_message": "",
        "sample_instruction": "Where is my order?",
        "sample_context": "",
        "sample_input": "",
        "sample_completion": "It ships today.",
    }
    for name in ("instruction", "context", "input", "output"):
        data[f"{name}_label"] = name.title()
        data[f"{name}_help"] = ""
    data.update(overrides)
    return data


def test_lead_creates_a_task_and_becomes_its_lead(client, lead):
    client.force_login(lead)
    response = client.post(
        reverse("annotate:task_create"),
        {"name": "Extraction", "slug": "extract", "output_format": "json", "json_schema": '{"type": "object"}',
         "approvals_required": "2", "validation_ratio": "0.2", "split_seed": "s1", "preset": "extraction-json",
         "allow_new_examples": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    task = Task.objects.get(slug="extract")
    assert response.url == reverse("annotate:template_edit", args=["extract"])
    assert task.json_schema == {"type": "object"} and task.approvals_required == 2 and task.validation_ratio == 0.2
    assert task.current_template.preset == "extraction-json"
    assert Membership.objects.filter(task=task, user=lead, role=Role.LEAD).exists()


def test_task_form_names_bad_input_and_saves_nothing(client, lead):
    client.force_login(lead)
    response = client.post(
        reverse("annotate:task_create"),
        {"name": "X", "slug": "x", "output_format": "json", "json_schema": "{not json", "approvals_required": "1",
         "validation_ratio": "1.5", "split_seed": "s"},
    )  # fmt: skip
    assert response.status_code == 200
    assertContains(response, "Not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2.")
    assert not Task.objects.filter(slug="x").exists()


def test_label_task_needs_labels(client, lead):
    client.force_login(lead)
    response = client.post(
        reverse("annotate:task_create"),
        {"name": "L", "slug": "l", "output_format": "label", "labels": " , ", "approvals_required": "1",
         "validation_ratio": "0.1", "split_seed": "s"},
    )  # fmt: skip
    assertContains(response, "A label task needs at least one label.")
    assert not Task.objects.filter(slug="l").exists()


def test_lead_edits_task_settings(client, task, lead):
    client.force_login(lead)
    response = client.post(
        reverse("annotate:task_edit", args=[task.slug]),
        {"name": "Renamed", "output_format": "text", "guidelines": "# Be kind", "approvals_required": "1",
         "validation_ratio": "0.05", "split_seed": "seed"},
    )  # fmt: skip
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.name == "Renamed" and task.validation_ratio == 0.05 and task.slug == "support"


def test_guidelines_render_markdown_and_escape_html(client, task, annotator):
    task.guidelines = (
        "## Tone\n**Be kind.** <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>"
    )
    task.save()
    client.force_login(annotator)
    response = client.get(reverse("annotate:task_detail", args=[task.slug]))
    assertContains(response, "<h2>Tone</h2>", html=False)
    assertContains(response, "<strong>Be kind.</strong>", html=False)
    assertContains(response, "&lt;script&gt;alert(1)&lt;/script&gt;", html=False)
    assertNotContains(response, "<script>alert(1)")
    assertNotContains(response, 'href="javascript:')
    assertNotContains(response, "<img src=x")


def test_task_name_is_escaped_everywhere(client, task, lead):
    task.name = '<img src=x onerror="alert(1)">'
    task.save()
    client.force_login(lead)
    for url in (reverse("home"), reverse("annotate:task_detail", args=[task.slug])):
        response = client.get(url)
        assertNotContains(response, '<img src=x onerror="alert(1)">')
        assertContains(response, "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;")


def test_every_page_sends_a_content_security_policy_without_inline_script(client, lead, task):
    client.force_login(lead)
    response = client.get(reverse("annotate:template_edit", args=[task.slug]))
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script>" not in response.content.decode()  # only <script src=...>


def test_template_preview_fragment_renders_every_format(client, task, lead):
    client.force_login(lead)
    response = client.post(
        reverse("annotate:template_preview", args=[task.slug]), template_post(task), headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert 'id="preview"' in html and "<html" not in html
    assert "### Question:\nWhere is my order?\n\n### Answer:\n" in html  # optional context section dropped
    for fmt in ("openai-chat", "prompt-completion", "alpaca"):
        assert f'data-format="{fmt}"' in html


def test_template_preview_names_a_bad_placeholder(client, task, lead):
    client.force_login(lead)
    data = template_post(task, prompt_format="Q: {question}")
    response = client.post(reverse("annotate:template_preview", args=[task.slug]), data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assertContains(response, "cannot be rendered yet")


def test_template_preview_escapes_sample_text(client, task, lead):
    client.force_login(lead)
    data = template_post(task, sample_instruction='<script>alert("x")</script>')
    response = client.post(reverse("annotate:template_preview", args=[task.slug]), data, headers={"HX-Request": "true"})
    assertNotContains(response, '<script>alert("x")')
    assertContains(response, "&lt;script&gt;")


def test_template_edit_in_place_while_unused(client, task, lead):
    client.force_login(lead)
    response = client.post(reverse("annotate:template_edit", args=[task.slug]), template_post(task))
    assert response.status_code == 302
    assert list(task.templates.values_list("version", flat=True)) == [1]
    assert task.current_template.prompt_format.startswith("### Question:")


def test_template_used_by_examples_is_frozen_and_editing_makes_the_next_version(client, task, lead):
    original = task.current_template.prompt_format
    ExampleFactory(task=task)
    client.force_login(lead)
    response = client.post(reverse("annotate:template_edit", args=[task.slug]), template_post(task))
    assert response.status_code == 302
    assert sorted(task.templates.values_list("version", flat=True)) == [1, 2]
    assert PromptTemplate.objects.get(task=task, version=1).prompt_format == original
    assert task.current_template.version == 2 and task.current_template.prompt_format.startswith("### Question:")
    followed = client.get(response.url)
    assertContains(followed, "Saved as template version 2")


def test_template_save_refuses_bad_template_and_keeps_the_old_one(task):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="unknown placeholder"):
        template_save(task=task, values={"prompt_format": "{oops}"})
    assert task.current_template.prompt_format != "{oops}"


def test_apply_preset_fills_the_form_without_saving(client, task, lead):
    client.force_login(lead)
    before = task.current_template.prompt_format
    data = template_post(task, preset="summarisation", apply_preset="1")
    response = client.post(reverse("annotate:template_edit", args=[task.slug]), data)
    assert response.status_code == 200
    assertContains(response, "### Summary:")
    task.current_template.refresh_from_db()
    assert task.current_template.prompt_format == before


def test_members_add_and_remove_roles(client, task, lead):
    newcomer = UserFactory(username="nina")
    client.force_login(lead)
    url = reverse("annotate:members", args=[task.slug])
    assert client.post(url, {"action": "add", "username": "nina", "role": "reviewer"}).status_code == 302
    assert Membership.objects.filter(task=task, user=newcomer, role="reviewer").exists()
    response = client.post(url, {"action": "add", "username": "nobody", "role": "reviewer"})
    assertContains(response, "No account is called “nobody”")
    assert not User.objects.filter(username="nobody").exists()
    client.post(url, {"action": "remove", "user_id": newcomer.pk, "role": "reviewer"})
    assert not Membership.objects.filter(task=task, user=newcomer).exists()


def test_the_last_lead_cannot_be_removed(client, task, lead):
    client.force_login(lead)
    url = reverse("annotate:members", args=[task.slug])
    response = client.post(url, {"action": "remove", "user_id": lead.pk, "role": "lead"}, follow=True)
    assertContains(response, "A task needs at least one lead")
    assert Membership.objects.filter(task=task, user=lead, role="lead").exists()


def test_members_page_cannot_remove_someone_from_another_task(client, task, other_task, lead, outsider):
    client.force_login(lead)
    url = reverse("annotate:members", args=[task.slug])
    client.post(url, {"action": "remove", "user_id": outsider.pk, "role": "lead"})
    assert Membership.objects.filter(task=other_task, user=outsider, role="lead").exists()


def test_json_schema_must_itself_be_valid(client, lead):
    client.force_login(lead)
    response = client.post(
        reverse("annotate:task_create"),
        {"name": "J", "slug": "j", "output_format": "json", "json_schema": json.dumps({"type": "nonsense"}),
         "approvals_required": "1", "validation_ratio": "0.1", "split_seed": "s"},
    )  # fmt: skip
    assertContains(response, "Not a valid JSON Schema")
    assert not Task.objects.filter(slug="j").exists()


def test_template_keeps_trailing_newlines_and_folds_browser_crlf(client, task, lead):
    client.force_login(lead)
    data = template_post(task, prompt_format="### Q:\r\n{instruction}\r\n\r\n### A:\r\n")
    client.post(reverse("annotate:template_edit", args=[task.slug]), data)
    assert task.current_template.prompt_format == "### Q:\n{instruction}\n\n### A:\n"
