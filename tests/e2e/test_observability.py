"""Metrics and logs on real processes: gunicorn with the shipped config (2 workers), a
qcluster, LOG_FORMAT=json."""

from __future__ import annotations

import json
import shutil
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.conf import settings
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from .harness import ROOT, Platform, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

GUNICORN_CONFIG = ROOT / "docker" / "gunicorn.conf.py"
HEALTH_OK = (("method", "GET"), ("route", "health"), ("status", "200"))


@pytest.fixture(scope="module")
def observed(tmp_path_factory) -> Iterator[tuple[Platform, Path]]:
    """The platform's gunicorn as shipped, its workers' metric files in a folder we know."""
    metrics_dir = tmp_path_factory.mktemp("prometheus-multiproc")
    # Left by an earlier run: unreadable, so /metrics would fail unless gunicorn empties the folder.
    (metrics_dir / "counter_99999.db").write_bytes(b"stale")
    platform = Platform(
        settings.DATABASES["default"], tmp_path_factory.mktemp("observability-logs"), extra_env={"LOG_FORMAT": "json"}
    )
    platform.create_database()
    try:
        platform.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # gunicorn's, not the cluster's
        platform.start_web(config=GUNICORN_CONFIG)
        del platform.env["PROMETHEUS_MULTIPROC_DIR"]
        yield platform, metrics_dir
    finally:
        platform.stop_all()
        platform.drop_database()


def parse(text: str) -> dict[str, dict[tuple, float]]:
    samples: dict[str, dict[tuple, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def scrape(platform: Platform) -> dict[str, dict[tuple, float]]:
    response = requests.get(f"{platform.base_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def per_process(metrics_dir: Path, tmp_path: Path) -> dict[int, float]:
    """GET /health answered (200) by each process, read from that process's file alone."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        alone = tmp_path / path.stem
        alone.mkdir()
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        for family in registry.collect():
            for sample in family.samples:
                if (
                    sample.name == "jobplatform_http_requests_total"
                    and tuple(sorted(sample.labels.items())) == HEALTH_OK
                ):
                    counts[int(path.stem.rsplit("_", 1)[1])] = sample.value
    return counts


def test_http_counters_from_both_workers_are_summed(observed, tmp_path):
    platform, metrics_dir = observed
    assert not (metrics_dir / "counter_99999.db").exists()
    before = scrape(platform)["jobplatform_http_requests_total"].get(HEALTH_OK, 0)
    sent = 60
    with ThreadPoolExecutor(max_workers=6) as pool:  # concurrent connections: both sync workers answer
        statuses = list(
            pool.map(lambda _: requests.get(f"{platform.base_url}/health", timeout=10).status_code, range(sent))
        )
    assert statuses == [200] * sent

    scrapes = [scrape(platform) for _ in range(4)]  # answered by either worker: the same figure
    totals = {s["jobplatform_http_requests_total"][HEALTH_OK] for s in scrapes}
    assert totals == {before + sent}, totals

    by_process = per_process(metrics_dir, tmp_path)
    assert len([n for n in by_process.values() if n > 0]) == 2, by_process  # both workers served some
    assert sum(by_process.values()) == before + sent  # and /metrics is their sum


def test_job_figures_come_from_the_database_whichever_process_ran_them(observed):
    platform, _ = observed
    client = platform.client(platform.token("observed"))
    ids = [platform.create_job(client, {"type": "fibonacci", "params": {"n": 50}})["id"] for _ in range(3)]
    platform.start_cluster()
    try:
        for job_id in ids:
            platform.wait_status(job_id, ("succeeded",), timeout=60)
    finally:
        platform.stop_clusters()
    samples = scrape(platform)
    fib = (("type", "fibonacci"),)
    assert samples["jobplatform_jobs_created_total"][fib] == 3
    assert samples["jobplatform_jobs_started_total"][fib] == 3
    assert samples["jobplatform_jobs_finished_total"][(("status", "succeeded"), *fib)] == 3
    assert samples["jobplatform_job_run_seconds_count"][fib] == 3
    assert samples["jobplatform_jobs"][(("status", "succeeded"), *fib)] == 3

    # The cluster logged each transition as a JSON line with the job's fields.
    lines = [
        json.loads(line)
        for path in platform.log_dir.glob("qcluster-*.log")
        for line in path.read_text().splitlines()
        if line.startswith("{")
    ]
    transitions = [r for r in lines if r.get("logger") == "jobs.transitions"]
    for job_id in ids:
        row = platform.job(job_id)
        mine = [r for r in transitions if r["job_id"] == job_id]
        assert [r["transition"] for r in mine] == ["started", "succeeded"], mine
        assert all(r["job_type"] == "fibonacci" and r["attempt"] == 1 and r["worker"] == row["worker"] for r in mine)
        assert mine[1]["duration"] >= 0


def test_request_lines_are_json_with_the_request_id_and_never_a_token(observed):
    platform, _ = observed
    secret_header, secret_query = f"hdr{uuid.uuid4().hex}", f"qry{uuid.uuid4().hex}"
    response = requests.get(
        f"{platform.base_url}/jobs",
        params={"token": secret_query},
        headers={"Authorization": f"Token {secret_header}", "X-Request-ID": "probe-42"},
        timeout=10,
    )
    assert response.status_code == 401 and response.headers["X-Request-ID"] == "probe-42"

    def logged() -> list[dict]:
        text = "".join(p.read_text() for p in platform.log_dir.glob("gunicorn-*.log"))
        assert secret_header not in text and secret_query not in text  # gunicorn's access log included
        assert "Unauthorized" not in text
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    line = wait_for(
        lambda: next((r for r in logged() if r.get("request_id") == "probe-42"), None), timeout=10, what="request line"
    )
    assert line["logger"] == "jobs.requests" and line["route"] == "job-list" and line["status"] == 401
    assert line["method"] == "GET" and line["app"] is None and line["duration"] >= 0
