"""The README's Python example (start an export, wait, download, load with `datasets`) runs as written against a live
server: the example users copy must work."""

import os
import re
from pathlib import Path

import pytest

from exports import services

from ..exports.conftest import approve

pytestmark = pytest.mark.django_db(transaction=True)

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("### The JSON API for pipelines") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_exports_downloads_and_loads_the_splits(
    live_server, task, lead, inline_celery, tmp_path, monkeypatch
):
    approve(task, 40)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAIRSMITH_URL", live_server.url)
    monkeypatch.setenv("PAIRSMITH_TOKEN", services.token_create(user=lead, name="readme")[1])
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    scope: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), scope)  # noqa: S102 (our own README's example)
    splits = scope["splits"]
    assert set(splits) == {"train", "validation", "test"}
    assert sum(len(split) for split in splits.values()) == 40
    assert splits["train"][0]["messages"][-1]["role"] == "assistant"
    assert sorted(os.listdir("support-export")) == sorted(
        scope["export"]["files"][i]["name"] for i in range(len(scope["export"]["files"]))
    )
