"""The create examples the docs show work as shipped: each `curl -X POST` of a batch, and
each example that names a `callback_url`, is sent to the real API with the settings a new
install has, plus only those its own code block tells the reader to set."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from jobs.conf import host_list
from tests.integration.conftest import new_app

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)
CREATE = re.compile(r"curl [^\n]*-X POST http://127\.0\.0\.1:8000(/\w+)\b.*?-d '([^']*)'", re.DOTALL)
#: A setting a block tells the reader to set: `JOBS_NAME=value` on a comment line.
SETTING = re.compile(r"^#.*?\b(JOBS_[A-Z_]+)=(\S+)", re.MULTILINE)
#: How this test applies each setting a block may name (a new one: teach it here).
APPLY = {"JOBS_CALLBACK_ALLOWED_HOSTS": host_list}


def examples() -> list[tuple[str, str, dict, dict[str, str]]]:
    found = []
    for page in PAGES:
        for block in BLOCK.findall(page.read_text()):
            settings = dict(SETTING.findall(block))
            for path, body in CREATE.findall(block):
                sent = json.loads(body)
                if path == "/batches" or "callback_url" in body:
                    found.append((f"{page.name}: POST {path}", path, sent, settings))
    return found


EXAMPLES = examples()


def test_the_examples_this_test_reads_are_there():
    names = [name for name, *_ in EXAMPLES]
    assert names.count("batches.md: POST /batches") == 2 and "api.md: POST /jobs" in names, names


@pytest.mark.parametrize(("name", "path", "body", "named"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_a_documented_create_works_with_the_settings_its_block_names(name, path, body, named, settings):
    assert set(named) <= set(APPLY), f"{name} names {sorted(named)}: teach this test how to apply it"
    _, token = new_app()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    def post():
        return api.post(path, data=json.dumps(body), content_type="application/json")

    if "callback_url" in json.dumps(body):
        # As shipped no host is allowed: without the block's setting the example is refused,
        # which is why the block says to set it.
        settings.JOBS_CALLBACK_ALLOWED_HOSTS = []
        refused = post()
        assert refused.status_code == 400, refused.content
        assert [error["field"] for error in refused.json()["errors"]] == ["callback_url"]
    for setting, value in named.items():
        setattr(settings, setting, APPLY[setting](value))
    response = post()
    assert response.status_code == 201, (name, response.content)
