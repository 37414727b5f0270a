"""The platform's own use case with real parts: ``migrate_rows`` copies a 100,000-row table
of a PostgreSQL source to a real local HTTP receiver (``demo_receiver``'s, which stores
rows by key and honours Idempotency-Key) while its cluster is killed with SIGKILL
(the whole process group) and the receiver goes down for a while; and a migration that
ran out of attempts while its target was down is re-run with resume over the API."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings

from jobs.management.commands.demo_receiver import Receiver
from jobs.services.demo_source import DemoSource
from tests.conftest import MEASURED

from .harness import ROOT, Platform, all_log_lines, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ROWS = 100_000
TABLE = "legacy_customers"
MAPPING = {"id": "id", "email": "email", "name": "full_name", "region": "region", "balance": "balance"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    """A private platform whose demo database (beside its own, never its own) is the source
    ``legacy``, read as a role that may only read its table of 100,000 customers, by every
    application; batches may go to 127.0.0.1."""
    instance = Platform(
        settings.DATABASES["default"],
        tmp_path_factory.mktemp("e2e-migration"),
        {
            "JOBS_MIGRATION_TARGET_HOSTS": "127.0.0.1",
            "JOBS_MIGRATION_TARGET_RETRIES": "2",
            "JOBS_MIGRATION_TARGET_BACKOFF": "0.25",
        },
    )
    instance.create_database()
    try:
        source_url = instance.manage("create_demo_source", "--print-source-url").strip()
        instance.env |= {"JOBS_SOURCES": f"legacy={source_url}", "JOBS_SOURCE_APPS": "legacy=*"}
        instance.start_web()
        instance.manage("create_demo_source", "--rows", str(ROWS), "--table", TABLE)
        yield instance
    finally:
        instance.stop_all()
        instance.drop_database()


@pytest.fixture
def api(platform):
    yield platform.client(platform.token(f"migration-{time.monotonic_ns()}"))
    platform.stop_clusters()


class KillingReceiver(Receiver):
    """The demo receiver, which kills ``cluster`` (kill -9 of its process group) right after
    answering the batch that brings it to ``at_rows`` rows."""

    def __init__(self, *, at_rows: int, **options) -> None:
        super().__init__(**options)
        self.at_rows = at_rows
        self.cluster = None
        self.killed = threading.Event()
        self.held_at_kill = 0

    def answered(self, status: int, answer: dict) -> None:
        if not self.killed.is_set() and len(self.rows) >= self.at_rows:
            self.held_at_kill = len(self.rows)
            Platform.kill9(self.cluster)
            self.killed.set()


def batch_lines(lines: list[dict], attempt: int | None = None) -> list[dict]:
    return [
        line
        for line in lines
        if line["message"].startswith("batch ") and line["message"].endswith(" sent")
        if attempt is None or line["attempt"] == attempt
    ]


def keys_digest(keys) -> str:
    return hashlib.md5(",".join(map(str, sorted(keys))).encode()).hexdigest()


def source_digest(platform: Platform, where: str = "true") -> tuple[int, str]:
    """The count and checksum of the source's keys, computed by PostgreSQL itself."""
    [row] = platform.sql(
        f"SELECT count(*) AS n, md5(string_agg(id::text, ',' ORDER BY id)) AS md5 FROM {TABLE} WHERE {where}",
        database=DemoSource.beside(platform.name).database,
    )
    return row["n"], row["md5"]


def test_a_migration_killed_mid_way_and_refused_for_a_while_delivers_every_row_exactly_once(platform, api):
    started = time.monotonic()
    # The receiver answers 503 for 3 seconds once it holds 60,000 rows: longer than one
    # attempt's retries (3 sends over 0.75 s), so attempts fail and the platform retries them.
    # And right after acknowledging the batch that brings it to 30,000 rows, it kills the
    # whole cluster (every process of its group): the worker dies between the 2xx and its
    # checkpoint (or, if it was quicker, just after the checkpoint).
    with KillingReceiver(at_rows=30_000, outage_after=60_000, outage_seconds=3.0) as receiver:
        receiver.cluster = platform.start_cluster()
        job = platform.create_job(
            api,
            {
                "type": "migrate_rows",
                "params": {
                    "source": "legacy",
                    "table": TABLE,
                    "key": "id",
                    "mapping": MAPPING,
                    "transforms": {"email": "lower"},
                    "target_url": f"{receiver.url}/customers",
                    "batch_size": 1000,
                },
                "metadata": {"migration": "customers-e2e"},
                "max_attempts": 10,
            },
        )
        url = job["url"]

        assert receiver.killed.wait(timeout=60), "the migration never reached 30,000 rows"
        platform.clusters.remove(receiver.cluster)
        killed = platform.job(job["id"])
        assert killed["status"] == "running" and killed["attempts"] == 1
        kill_point = killed["checkpoint"]["last_key"]
        held_at_kill = receiver.held_at_kill
        assert held_at_kill == 30_000 and kill_point in (29_000, 30_000), killed["checkpoint"]
        assert killed["checkpoint"]["rows_done"] == kill_point

        platform.start_cluster()  # its maintenance rescues the job once the dead attempt's lease runs out
        done = platform.wait_status(job["id"], ("succeeded", "failed"), timeout=120)
        elapsed = time.monotonic() - started

    assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["rows"] == ROWS and result["batches"] == 100 and result["last_key"] == ROWS

    # Every row exactly once, by key: the count and a checksum of the keys, against the source.
    assert receiver.duplicates == 0
    assert (len(receiver.rows), keys_digest(receiver.rows)) == source_digest(platform)
    assert receiver.rows[4] == {
        "id": 4,
        "email": "customer.4@example.com",
        "name": "Customer 4",
        "region": "eu",
        "balance": "316.76",
    }

    # The resumed attempts did not start from zero: rows sent over all attempts stay close
    # to the table (at most the one batch in flight at the kill, answered "replayed").
    acknowledged = [b for b in receiver.batches if b["status"] == 200]
    sent_rows = sum(b["rows"] for b in acknowledged)
    replayed = [b for b in acknowledged if b["replayed"]]
    assert ROWS <= sent_rows <= ROWS + 1000 and len(replayed) <= 1, (sent_rows, replayed)
    if kill_point == 29_000:  # killed between the 2xx and the checkpoint: batch 30 went again, same key
        assert [(b["first"], b["last"]) for b in replayed] == [(29_001, 30_000)]
    else:
        assert replayed == []
    refused = [b for b in receiver.batches if b["status"] == 503]
    assert refused and all(b["first"] > 60_000 for b in refused)

    # The history: the killed attempt rescued, attempts failed while the target was down.
    events = platform.events(job["id"])
    assert ("rescued", 1) in [(e["kind"], e["attempt"]) for e in events]
    failed = [e for e in events if e["kind"] in ("retried", "failed")]
    assert failed and all(e["data"]["error"]["type"] == "TargetUnavailable" for e in failed), failed
    assert done["attempts"] == 2 + len(failed)

    # The log, over HTTP, tells the story.
    lines = all_log_lines(api, url)
    assert (
        lines[0]["attempt"] == 1
        and lines[0]["message"] == f"starting: {ROWS} rows of legacy:public.{TABLE}(id) to 127.0.0.1"
    )
    first_attempt = batch_lines(lines, 1)
    assert [b["fields"]["first_key"] for b in first_attempt][:3] == [1, 1001, 2001]
    resumed = next(line for line in lines if line["attempt"] == 2)
    assert resumed["level"] == "warning"
    assert resumed["message"].startswith(f"resuming after key {kill_point} ({kill_point} rows in ")
    assert resumed["fields"]["last_key"] == kill_point and resumed["fields"]["rows_left"] == ROWS - kill_point
    second_attempt = batch_lines(lines, 2)
    assert second_attempt[0]["fields"]["first_key"] == kill_point + 1 > 1  # not from zero
    retries = [line for line in lines if line["level"] == "warning" and line["fields"].get("status") == 503]
    assert retries and retries[0]["message"].endswith("HTTP 503; retry 1 of 2 in 0.25 s")
    gave_up = [line for line in lines if line["level"] == "error"]
    assert len(gave_up) == len(failed) and all(
        "giving up on this attempt after 3 tries" in g["message"] for g in gave_up
    )
    for attempt in range(3, done["attempts"] + 1):  # each later attempt resumed from the last checkpoint
        first = next(line for line in lines if line["attempt"] == attempt)
        assert first["message"].startswith("resuming after key "), first
    numbers = [int(line["message"].split()[1]) for line in batch_lines(lines)]
    assert sorted(set(numbers)) == list(range(1, 101)) and len(numbers) - len(set(numbers)) <= 1
    assert lines[-1]["message"] == f"finished: {ROWS} rows in 100 batches"
    final = api.get(url, timeout=10).json()
    assert final["checkpoint"]["state"]["rows_done"] == ROWS and final["logs"]["dropped"] == 0
    MEASURED["migration e2e"] = (
        f"{ROWS} rows in 100 batches; cluster killed (SIGKILL) right after the receiver acknowledged "
        f"{held_at_kill} rows, the checkpoint at key {kill_point}; {sent_rows - ROWS} rows sent twice "
        f"({len(replayed)} batch replayed); {len(refused)} sends refused with 503 over {len(failed)} failed attempts; "
        f"{done['attempts']} attempts; {elapsed:.1f} s from creation to success"
    )


def test_a_migration_out_of_attempts_while_the_target_was_down_is_rerun_from_its_last_batch(platform, api):
    # Down for good once it holds 10,000 rows (of the 25,000 in region eu).
    with Receiver(outage_after=10_000, outage_seconds=3600) as receiver:
        platform.start_cluster()
        params = {
            "source": "legacy",
            "table": TABLE,
            "key": "id",
            "mapping": {"id": "id", "email": "email"},
            "where_equals": {"region": "eu"},
            "target_url": f"{receiver.url}/customers",
            "batch_size": 500,
        }
        failed = platform.create_job(api, {"type": "migrate_rows", "params": params, "max_attempts": 2})
        old = platform.wait_status(failed["id"], ("failed", "succeeded"), timeout=60)
        assert old["status"] == "failed" and old["attempts"] == 2, old
        assert old["error"]["type"] == "TargetUnavailable" and "continues after key 40000" in old["error"]["message"]
        assert old["checkpoint"] == {
            "last_key": 40_000,
            "rows_done": 10_000,
            "batches_done": 20,
            "keyset": f"legacy:public.{TABLE}(id)",
        }

        receiver.fail_for(0)  # the target is back
        response = api.post(f"{failed['url']}/rerun", json={"resume": True}, timeout=10)
        assert response.status_code == 201, response.text
        new = response.json()
        assert new["rerun_of"] == failed["id"] and new["checkpoint"]["state"]["last_key"] == 40_000
        done = platform.wait_status(new["id"], ("succeeded", "failed"), timeout=60)

    assert done["status"] == "succeeded" and done["attempts"] == 1, done
    assert done["result"] | {"keyset": None} == {
        "rows": 25_000,
        "batches": 50,
        "last_key": 100_000,
        "resumed_after": 40_000,
        "rows_this_attempt": 15_000,
        "keyset": None,
    }
    assert receiver.duplicates == 0
    assert (len(receiver.rows), keys_digest(receiver.rows)) == source_digest(platform, "region = 'eu'")
    lines = all_log_lines(api, new["url"])
    assert lines[0]["message"] == "resuming after key 40000 (10000 rows in 20 batches already sent)"
    sent = batch_lines(lines)
    assert sent[0]["message"] == "batch 21 sent" and sent[0]["fields"]["first_key"] == 40_004
    assert lines[-1]["message"] == "finished: 25000 rows in 50 batches"
    # Nothing before the checkpoint was sent again.
    assert sum(b["rows"] for b in receiver.batches if b["status"] == 200) == 25_000


def test_the_readmes_migration_walkthrough_runs_through_scripts_start(platform, tmp_path):
    """scripts/start makes the demo database beside its own the source ``demo`` (every
    application, a role that may only read the demo tables) and allows the demo receiver's
    port on 127.0.0.1 only; the demo commands (a real demo_receiver process) and the
    README's request do the rest. The platform's own tables stay out of reach."""
    port, receiver_port = free_port(), free_port()
    unset = ("JOBS_SOURCES", "JOBS_SOURCE_APPS", "JOBS_MIGRATION_TARGET_HOSTS")
    env = {k: v for k, v in platform.env.items() if k not in unset}
    env |= {"HOST": "127.0.0.1", "PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    env["DEMO_RECEIVER_PORT"] = str(receiver_port)  # the README's 9000 may be taken on a shared machine
    env.pop("DJANGO_SETTINGS_MODULE")  # the script's own default (dev settings), as a user runs it
    start = subprocess.Popen(
        [str(ROOT / "scripts" / "start")],
        cwd=tmp_path,
        env=env,
        stdout=open(tmp_path / "start.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    receiver = subprocess.Popen(
        [sys.executable, "manage.py", "demo_receiver", "--port", str(receiver_port)],
        cwd=ROOT,
        env=env,
        stdout=open(tmp_path / "receiver.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        made = subprocess.run(
            [sys.executable, "manage.py", "create_demo_source", "--rows", "20000"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert made.returncode == 0 and "table demo_customers: 20000 rows" in made.stdout, made.stderr
        wait_for(lambda: requests.get(f"{base}/health", timeout=2).status_code == 200, timeout=120, what="start")
        api = platform.client(platform.token("walkthrough"))
        params = {
            "source": "demo",
            "table": "demo_customers",
            "key": "id",
            "batch_size": 500,
            "mapping": {"id": "id", "email": "email", "name": "full_name"},
            "transforms": {"email": "lower"},
            "target_url": f"http://127.0.0.1:{receiver_port}/customers",
        }
        created = api.post(
            f"{base}/jobs",
            json={"type": "migrate_rows", "params": params, "metadata": {"migration": "customers-demo"}},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        job_url = created.headers["Location"]
        done = wait_for(
            lambda: (job := api.get(job_url, timeout=5).json())["status"] in ("succeeded", "failed") and job,
            timeout=90,
            what="the walkthrough's migration",
        )
        assert done["status"] == "succeeded" and done["result"]["rows"] == 20_000, done
        assert done["progress"]["percent"] == 100.0
        held = requests.get(f"http://127.0.0.1:{receiver_port}/", timeout=5).json()
        assert held == {
            "rows": 20_000,
            "min_key": 1,
            "max_key": 20_000,
            "batches": 40,
            "stored": 40,
            "replayed": 0,
            "refused": 0,
            "duplicates": 0,
        }
        first = api.get(f"{job_url}/logs?limit=5", timeout=5).json()["results"]
        assert [line["message"] for line in first[:2]] == [
            "starting: 20000 rows of demo:public.demo_customers(id) to 127.0.0.1",
            "batch 1 sent",
        ]

        # The review's attack on this configuration: the platform's table of applications
        # (callback secrets) through the source "demo". It is not in the demo database.
        attack = api.post(
            f"{base}/jobs",
            json={
                "type": "migrate_rows",
                "params": params
                | {"table": "jobs_app", "key": "name", "mapping": {"name": "name", "secret": "callback_secret"}}
                | {"transforms": {}},
            },
            timeout=10,
        )
        assert attack.status_code == 201, attack.text
        refused = wait_for(
            lambda: (job := api.get(attack.headers["Location"], timeout=5).json())["status"] == "failed" and job,
            timeout=60,
            what="the attack's job failing",
        )
        assert refused["error"]["message"] == (
            "table public.jobs_app does not exist on source 'demo' (or its user may not read it)"
        )
        # And another port of this machine (the platform's own) is no target.
        elsewhere = api.post(
            f"{base}/jobs",
            json={"type": "migrate_rows", "params": params | {"target_url": f"{base}/jobs"}},
            timeout=10,
        )
        assert elsewhere.status_code == 400
        assert [e["field"] for e in elsewhere.json()["errors"]] == ["params.target_url"]
        assert requests.get(f"http://127.0.0.1:{receiver_port}/", timeout=5).json()["rows"] == 20_000
    finally:
        for proc in (start, receiver):
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert "batch 1…500: stored (holding 500 rows)" in (tmp_path / "receiver.log").read_text()
