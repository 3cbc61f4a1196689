"""Examples as annotators really make them (written, saved, submitted), and a second reviewer for 2-approval tasks."""

import pytest

from annotate import services as annotate_services
from annotate.models import Role
from tests.factories import MembershipFactory, UserFactory


def submit_new(task, annotator, completion: str = "Hold the round button for ten seconds.", **fields):
    """An example written by `annotator` and submitted: a draft revision, a submit revision, status submitted."""
    fields = {"instruction": "How do I restart my thermostat?", **fields}
    example = annotate_services.example_write_new(
        task=task, user=annotator, fields=fields, completion="first draft", kind="happy"
    )
    return annotate_services.example_submit(
        example=example, user=annotator, completion=completion, kind=example.kind, expected_version=example.version
    )


@pytest.fixture
def submitted(task, annotator):
    """Make submitted examples of `annotator` (or another author): submitted(completion=..., author=...)."""

    def make(completion: str = "Hold the round button for ten seconds.", author=None, **fields):
        return submit_new(task, author or annotator, completion, **fields)

    return make


@pytest.fixture
def example(submitted):
    return submitted()


@pytest.fixture
def second_reviewer(task):
    user = UserFactory(username="remy")
    MembershipFactory(task=task, user=user, role=Role.REVIEWER)
    return user


@pytest.fixture
def other_annotator(task):
    user = UserFactory(username="otis")
    MembershipFactory(task=task, user=user, role=Role.ANNOTATOR)
    return user
