"""A refused request (403, 404) logs one line without a traceback, once; a server error keeps its traceback."""

import io
import logging
import logging.config

import pytest
from django.conf import settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def console():
    """The project's logging configuration, its console writing into a buffer (as the server's log would)."""
    stream = io.StringIO()
    config = {**settings.LOGGING, "handlers": {"console": {"class": "logging.StreamHandler", "stream": stream}}}
    logging.config.dictConfig(config)
    yield stream
    logging.config.dictConfig(settings.LOGGING)


def test_a_403_is_one_line_without_a_traceback(client, task, annotator, console):
    client.force_login(annotator)
    assert client.get(reverse("annotate:task_edit", args=[task.slug])).status_code == 403
    log = console.getvalue()
    assert log.count("Forbidden") == 1, log
    assert "Traceback" not in log


def test_a_server_error_keeps_its_traceback(console):
    logger = logging.getLogger("django.request")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.error("Internal Server Error: /x", exc_info=True, extra={"status_code": 500})
    log = console.getvalue()
    assert log.count("Internal Server Error") == 1
    assert "Traceback" in log and "RuntimeError: boom" in log
