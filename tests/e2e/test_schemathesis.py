"""Schemathesis against a real gunicorn: requests generated from /schema itself, with a
real token, must never get a 5xx nor an answer the document does not describe.

Bounded and repeatable: a fixed number of examples per operation, Hypothesis'
deterministic mode (derandomized: no seed, no example database), no replay of earlier
failures, two workers (the platform's gunicorn has two); each run must end within two
minutes.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from .harness import Platform, wait_for

pytestmark = pytest.mark.e2e

#: What an answer must satisfy: no server error; its status code, content type, headers and
#: body as the document says for that operation.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
EXAMPLES_PER_OPERATION = 25
TIME_LIMIT = 120


#: The phases, in two runs. Examples, fuzzing and stateful (25 examples per operation, about
#: 760 requests) in the suite; the coverage phase (boundary and invalid values for every
#: parameter, deterministic: about 5,200 requests, a minute here) is a ``scan``, which
#: ``.ci/run`` runs beside the suite (``scripts/test -m scan``) so the suite stays short.
PHASES = [
    pytest.param("examples,fuzzing,stateful", id="examples-fuzzing-stateful"),
    pytest.param("coverage", id="coverage", marks=pytest.mark.scan),
]


@pytest.mark.parametrize("phases", PHASES)
def test_schemathesis_finds_no_5xx_and_no_answer_the_schema_does_not_describe(
    platform: Platform, tmp_path: Path, phases: str
):
    app_name = f"schemathesis-{phases.replace(',', '-')}"
    token = platform.token(app_name)
    # A cluster that reports, so /ready answers its 200 (without one its 503 is correct, and
    # schemathesis counts every 5xx as a failure).
    platform.start_cluster()
    wait_for(
        lambda: requests.get(f"{platform.base_url}/ready", timeout=5).status_code == 200, timeout=60, what="/ready"
    )
    document = requests.get(f"{platform.base_url}/schema", timeout=10).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    started = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{platform.base_url}/schema",
            "--header",
            f"Authorization: Token {token}",
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--generation-deterministic",  # no example database either
            "--workers",
            "2",  # the platform's gunicorn has two workers
            "--request-timeout",
            "10",
            "--no-color",
            "--phases",
            phases,
        ],
        # Schemathesis keeps the failures it found in ./.schemathesis and replays them in the
        # next run: a private folder keeps every run the same.
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
    )
    elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    print(output[output.find("SUMMARY") - 40 :])  # the counts, for `pytest -s` and CI logs
    assert run.returncode == 0, output
    # It really ran every operation of the document, with the token (jobs were created).
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested.group(1)) == operations, output
    generated = re.search(r"(\d+) generated", output)
    assert generated and int(generated.group(1)) >= operations * 5, output
    created = platform.sql(
        "SELECT count(*) AS n FROM jobs_job j JOIN jobs_app a ON a.id = j.app_id WHERE a.name = %s", [app_name]
    )[0]["n"]
    assert created > 0, output
    assert elapsed < TIME_LIMIT
    platform.stop_clusters()
