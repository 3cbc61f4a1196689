"""Task slugs are unique ignoring case: a slug names the task's export folder, and "Support" and "support" would be one
folder on a case-insensitive filesystem. The database refuses them (annotate_task_slug_ci); the creation form, the
`create_task` command and the admin say which slug is taken; URLs keep the slug as it was written."""

import importlib.util
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from pytest_django.asserts import assertContains

from annotate import services
from annotate.models import Membership, Role, Task
from tests.factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db
TAKEN = "A task with slug 'support' already exists (slugs that differ only in case name the same export folder)."


def create_form(**overrides) -> dict:
    data = {"name": "Shouting", "slug": "SUPPORT", "output_format": "text", "approvals_required": "1",
            "validation_ratio": "0.1", "split_seed": "s"}  # fmt: skip
    return {**data, **overrides}


def test_the_database_refuses_a_slug_that_differs_only_in_case(task):
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.create(slug="Support", name="Bypassing every check")
    assert list(Task.objects.values_list("slug", flat=True)) == ["support"]


def test_the_constraint_is_named_in_house_style():
    names = [constraint.name for constraint in Task._meta.constraints]
    assert "annotate_task_slug_ci" in names


def test_the_creation_form_names_the_slug_taken_next_to_the_field(client, task, lead):
    client.force_login(lead)
    response = client.post(reverse("annotate:task_create"), create_form())
    assert response.status_code == 200
    assert response.context["form"].errors["slug"] == [TAKEN]
    assertContains(response, '<small class="error">A task with slug &#x27;support&#x27; already exists', html=False)
    assert list(Task.objects.values_list("slug", flat=True)) == ["support"]
    assert not Membership.objects.filter(user=lead, role=Role.LEAD).exclude(task=task).exists()


def test_the_creation_form_still_names_an_exact_duplicate(client, task, lead):
    client.force_login(lead)
    response = client.post(reverse("annotate:task_create"), create_form(slug="support"))
    assert response.context["form"].errors["slug"] == ["A task with slug 'support' already exists."]
    assert Task.objects.count() == 1


def test_a_slug_free_in_any_case_is_created_as_written(client, lead):
    client.force_login(lead)
    response = client.post(reverse("annotate:task_create"), create_form(slug="Support-EU"))
    assert response.status_code == 302
    assert sorted(Task.objects.values_list("slug", flat=True)) == ["Support-EU", "support"]  # `lead` leads support


def test_create_task_refuses_a_slug_that_differs_only_in_case_and_changes_nothing(task):
    with pytest.raises(CommandError) as refused:
        call_command("create_task", "Support", "--name", "Again", stdout=StringIO())
    assert str(refused.value) == f"slug: {TAKEN}"
    assert list(Task.objects.values_list("slug", "name")) == [("support", "Support answers")]


def test_the_service_refuses_it_too(task):
    with pytest.raises(ValidationError) as refused:
        services.task_create(slug="SUPPORT", name="Again")
    assert refused.value.message_dict == {"slug": [TAKEN]}


def test_full_clean_says_so_for_the_admin(task):
    with pytest.raises(ValidationError, match="A task with this slug, ignoring case, already exists."):
        Task(slug="sUpPoRt", name="From the admin").full_clean()


def test_urls_keep_working_with_the_slug_as_written(client, db):
    mixed = TaskFactory(slug="Support-EU", name="European support")
    other = TaskFactory(slug="support-us", name="American support")
    user = UserFactory(username="lena")
    for task in (mixed, other):
        Membership.objects.create(task=task, user=user, role=Role.LEAD)
    client.force_login(user)
    assertContains(client.get(reverse("annotate:task_detail", args=["Support-EU"])), "European support")
    assertContains(client.get(reverse("annotate:task_detail", args=["support-us"])), "American support")
    assertContains(client.get(reverse("reviews:queue", args=["Support-EU"])), "Review queue")


def _migration():
    """The migration that adds the constraint, found by its name (merges renumber it)."""
    folder = Path(__file__).resolve().parents[2] / "annotate" / "migrations"
    (path,) = folder.glob("*_task_slug_case_insensitive.py")
    spec = importlib.util.spec_from_file_location("slug_migration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_names_existing_clashes_instead_of_failing_on_the_index():
    clashing = _migration().clashing
    assert clashing(["support", "Support", "billing", "SUPPORT", "Billing-2"]) == ["SUPPORT", "Support", "support"]
    assert clashing(["support", "billing"]) == []
