"""A lead imports preference pairs through the import page, as any file: upload, the mapping page, import."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pytest_django.asserts import assertContains

from annotate.models import ImportJob
from preferences.models import Comparison, PreferencePair

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"


def test_pairs_import_through_the_page(client, lead, task):
    records = [{"id": f"p{i}", "prompt": f"Q{i}", "chosen": "Good answer.", "rejected": "Bad."} for i in range(3)]
    records.append({"prompt": "Q9", "candidates": ["One.", "Two."]})
    content = "".join(json.dumps(r) + "\n" for r in records).encode()
    client.force_login(lead)
    response = client.post(
        reverse("imports:upload", args=[task.slug]), {"file": SimpleUploadedFile("p.jsonl", content), "file_format": ""}
    )
    mapping_url = response.url
    page = client.get(mapping_url)
    assert page.status_code == 200
    assertContains(page, 'data-testid="preference-file"')
    form = page.context["form"]
    chosen = {name: form[name].value() for name in form.fields if name.startswith("map_")}  # as the browser sends
    response = client.post(mapping_url, {**chosen, "status": "approved", "action": "import"})
    assert response.status_code == 302, response.context["form"].errors
    job = ImportJob.objects.get()
    assert job.state == "succeeded", job.error
    assert PreferencePair.objects.filter(task=task, reviewed=True).count() == 3
    assert Comparison.objects.filter(task=task).count() == 1
    assertContains(client.get(response.url), "Imported 3 preference pairs (reviewed) and 1 comparison to judge.")
