from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from annotate.models import Example, Membership, Revision, Task
from reviews.models import Verdict

pytestmark = pytest.mark.django_db
User = get_user_model()


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_task_with_labels_and_preset():
    out = run(
        "create_task",
        "sentiment",
        "--name",
        "Sentiment",
        "--output-format",
        "label",
        "--labels",
        "positive, negative,neutral",
        "--preset",
        "classification",
    )
    task = Task.objects.get(slug="sentiment")
    assert task.labels == ["positive", "negative", "neutral"]
    assert task.current_template.preset == "classification"
    assert "Created task 'sentiment'" in out and "labels positive, negative, neutral" in out


def test_create_task_refuses_a_label_task_without_labels_and_changes_nothing():
    with pytest.raises(CommandError, match="labels: A label task needs at least one label"):
        run("create_task", "bad", "--name", "Bad", "--output-format", "label")
    assert not Task.objects.exists()


def test_create_task_refuses_a_duplicate_slug():
    run("create_task", "qa", "--name", "QA")
    with pytest.raises(CommandError, match="slug: A task with slug 'qa' already exists"):
        run("create_task", "qa", "--name", "Again")
    assert Task.objects.get().name == "QA"


def test_create_task_refuses_a_bad_slug():
    with pytest.raises(CommandError, match="slug"):
        run("create_task", "not a slug!", "--name", "X")
    assert not Task.objects.exists()


def test_add_member_creates_the_user_and_is_idempotent(task):
    out = run("add_member", task.slug, "newcomer", "--role", "reviewer", "--password", "a-long-passphrase-42")
    user = User.objects.get(username="newcomer")
    assert user.check_password("a-long-passphrase-42")
    assert "Created user 'newcomer'" in out and "now reviewer" in out
    again = run("add_member", task.slug, "newcomer", "--role", "reviewer")
    assert "already reviewer" in again
    assert Membership.objects.filter(user=user, task=task).count() == 1


def test_add_member_to_unknown_task_fails_and_creates_nobody(db):
    with pytest.raises(CommandError, match="No task with slug 'nope'"):
        run("add_member", "nope", "ghost", "--role", "lead")
    assert not User.objects.filter(username="ghost").exists()


def test_add_member_with_a_weak_password_fails_and_creates_nobody(task):
    with pytest.raises(CommandError, match="too short|too common"):
        run("add_member", task.slug, "weak", "--role", "annotator", "--password", "123")
    assert not User.objects.filter(username="weak").exists()


def test_seed_demo_is_idempotent_and_prints_accounts():
    out = run("seed_demo")
    assert "annotator" in out and "reviewer" in out and "lead" in out and "password:" in out
    task = Task.objects.get(slug="skylark-support")
    counts = {
        "verdicts": Verdict.objects.count(),
        "examples": Example.objects.count(),
        "revisions": Revision.objects.count(),
        "users": User.objects.count(),
        "memberships": Membership.objects.count(),
    }
    assert 250 <= task.examples.count() <= 400
    assert set(Example.objects.values_list("kind", flat=True)) == {"happy", "edge", "negative", "ambiguous"}
    assert set(Example.objects.values_list("status", flat=True)) == {
        "new",
        "submitted",
        "approved",
        "flagged",
        "rejected",
    }
    # The flagged and rejected pairs went through real verdicts, with a reason and a comment, for My work and triage.
    flagged = Example.objects.filter(status="flagged").first()
    assert flagged.verdicts.get().reasons == ["unclear"] and "Open with the answer" in flagged.verdicts.get().comment
    assert (
        Example.objects.get(pk=Example.objects.filter(status="rejected").first().pk).verdicts.get().decision == "reject"
    )
    assert "By status:" in out
    run("seed_demo")
    assert counts == {
        "verdicts": Verdict.objects.count(),
        "examples": Example.objects.count(),
        "revisions": Revision.objects.count(),
        "users": User.objects.count(),
        "memberships": Membership.objects.count(),
    }
    assert Task.objects.get(slug="skylark-support") == task
    assert Task.objects.count() == 2  # and the tool-calling task (test_tools_demo.py)
    for username, password in [("annotator", "annotate-demo-pairs"), ("lead", "lead-demo-pairs")]:
        assert User.objects.get(username=username).check_password(password)


def test_seed_demo_refuses_production_without_the_flag(settings):
    settings.SECRET_KEY = "a-real-production-secret-key-that-is-long-enough-to-pass-the-checks"
    with pytest.raises(CommandError, match="production deployment"):
        run("seed_demo")
    assert not Task.objects.exists()
