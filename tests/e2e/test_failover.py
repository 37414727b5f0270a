"""PostgreSQL primary failover under load: a synchronous standby takes over, nothing
acknowledged is lost, and the platform follows it without a restart.

Two throwaway servers (tests/e2e/throwaway.py: a primary and its synchronous streaming
standby) and the real platform (gunicorn, a qcluster) on a libpq multi-host URL naming
both, with ``target_session_attrs=read-write``. Client threads create jobs without pause
and another one reads a job; the primary's postmaster is killed with SIGKILL; after a
short detection delay (what a failover manager such as Patroni takes) the standby is
promoted by hand with ``pg_ctl promote``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.conftest import MEASURED

from .harness import Platform, running_platform, wait_for
from .throwaway import StreamingPair

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

#: Client threads creating jobs; each sends its next request as soon as the last is answered.
CREATORS = 4
#: Load before the primary is killed.
LOAD_BEFORE_KILL = 3.0
#: Between the kill and the promotion: the time a failover manager takes to notice.
DETECTION_DELAY = 2.0
#: After the promotion, every request answered as before within this long (seconds).
RECOVERY = 5.0
#: Load kept up after the first 201 following the promotion.
LOAD_AFTER_RECOVERY = 3.0


@dataclass(frozen=True)
class Answer:
    sent: float  # time.monotonic() when the request went out
    received: float
    status: int  # 0: no HTTP answer at all (connection refused or reset, timeout)
    retry_after: str | None
    job_id: str | None
    error: str | None = None


class Clients:
    """Threads sending requests in a loop until stopped, every answer kept."""

    def __init__(self, platform: Platform, token: str) -> None:
        self.platform = platform
        self.token = token
        self.stopping = threading.Event()
        self.creates: list[Answer] = []
        self.reads: list[Answer] = []
        self.threads: list[threading.Thread] = []

    def start(self, read_url: str) -> None:
        self.threads = [threading.Thread(target=self._create_loop, daemon=True) for _ in range(CREATORS)]
        self.threads.append(threading.Thread(target=self._read_loop, args=(read_url,), daemon=True))
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in self.threads), "a client thread hangs"

    def _send(self, session: requests.Session, method: str, url: str, **kwargs) -> Answer:
        sent = time.monotonic()
        try:
            response = session.request(method, url, timeout=15, **kwargs)
        except requests.RequestException as exc:
            return Answer(sent, time.monotonic(), 0, None, None, error=repr(exc))
        job_id = response.json()["id"] if response.status_code == 201 else None
        return Answer(sent, time.monotonic(), response.status_code, response.headers.get("Retry-After"), job_id)

    def _create_loop(self) -> None:
        session = self.platform.client(self.token)
        body = {"type": "fibonacci", "params": {"n": 50}}
        while not self.stopping.is_set():
            answer = self._send(session, "POST", f"{self.platform.base_url}/jobs", json=body)
            self.creates.append(answer)
            if answer.status != 201:
                # Faster than Retry-After asks: the test measures when the platform is
                # back, not how long a polite client waits.
                time.sleep(0.1)

    def _read_loop(self, url: str) -> None:
        session = self.platform.client(self.token)
        while not self.stopping.is_set():
            self.reads.append(self._send(session, "GET", url))
            time.sleep(0.05)


@pytest.fixture(scope="module")
def pair() -> Iterator[StreamingPair]:
    instance = StreamingPair()
    try:
        instance.start()
        yield instance
    finally:
        instance.destroy()


@pytest.fixture(scope="module")
def platform(pair, tmp_path_factory) -> Iterator[Platform]:
    """The usual e2e platform, on a multi-host URL naming the primary, then the standby."""
    with running_platform(pair.settings, tmp_path_factory.mktemp("failover-logs")) as instance:
        yield instance


def test_primary_killed_under_load_standby_promoted_nothing_acknowledged_is_lost(platform, pair):
    primary, standby = pair.primary, pair.standby
    assert "," in platform.database_url and "target_session_attrs=read-write" in platform.database_url
    token = platform.token("failover")
    cluster = platform.start_cluster()
    first = platform.create_job(platform.client(token), {"type": "fibonacci", "params": {"n": 10}})
    assert platform.wait_status(first["id"], ("succeeded",), timeout=30)
    assert platform.sql("SELECT inet_server_port() AS port")[0]["port"] == primary.port

    clients = Clients(platform, token)
    clients.start(read_url=first["url"])
    try:
        time.sleep(LOAD_BEFORE_KILL)
        killed = time.monotonic()
        primary.kill9()
        time.sleep(DETECTION_DELAY)
        standby.promote()
        promoted = time.monotonic()
        wait_for(
            lambda: any(a.status == 201 and a.sent > promoted for a in clients.creates),
            timeout=RECOVERY + 10,
            interval=0.05,
            what="a 201 after the promotion",
        )
        time.sleep(LOAD_AFTER_RECOVERY)
    finally:
        clients.stop()

    creates, reads = list(clients.creates), list(clients.reads)
    acknowledged = [a.job_id for a in creates if a.status == 201]
    unavailable = [a for a in creates + reads if a.status == 503]
    first_201 = min(a.received for a in creates if a.status == 201 and a.sent > promoted)
    failed_reads = [a for a in reads if a.status != 200]
    write_outage = min(a.received for a in creates if a.status == 201 and a.sent > killed) - killed
    read_outage = max(a.received for a in failed_reads) - min(a.sent for a in failed_reads) if failed_reads else 0.0
    figures = (
        f"switch (kill to promoted) {promoted - killed:.2f}s "
        f"(detection delay {DETECTION_DELAY:.1f}s + pg_ctl promote {promoted - killed - DETECTION_DELAY:.2f}s); "
        f"first 201 {first_201 - promoted:.2f}s after the promotion; no 201 for {write_outage:.2f}s after the kill; "
        f"{len(creates)} creates: {len(acknowledged)} acknowledged, {sum(a.status == 503 for a in creates)} 503; "
        f"{len(reads)} reads: {sum(a.status == 503 for a in reads)} 503 over {read_outage:.2f}s"
    )
    print(f"\nfailover: {figures}")

    # Never a 500, never a dropped connection: 201 or 503 + Retry-After, reads 200 or 503.
    assert not [a for a in creates + reads if a.status == 0], "requests without an HTTP answer"
    assert {a.status for a in creates} <= {201, 503}, sorted({a.status for a in creates})
    assert {a.status for a in reads} <= {200, 503}, sorted({a.status for a in reads})
    assert unavailable, "the kill was not felt: the test measured nothing"
    assert all(a.retry_after and a.retry_after.isdigit() for a in unavailable)
    # Load on both sides of the switch.
    assert any(a.status == 201 and a.received < killed for a in creates)
    # 503s only while there is no writable primary, and a little after: every web process
    # reconnects to the promoted standby on its own.
    assert first_201 - promoted < RECOVERY
    assert all(a.sent < promoted + RECOVERY for a in unavailable), "503s long after the promotion"
    assert all(killed - 1 < a.received for a in unavailable)
    # A read (safe to retry) fails no longer than the switch plus that recovery.
    assert all(killed - 1 < a.received and a.sent < promoted + RECOVERY for a in failed_reads)

    # The platform now runs on the former standby, its listening connection included.
    assert platform.sql("SELECT inet_server_port() AS port")[0]["port"] == standby.port
    wait_for(
        lambda: standby.query("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'jobs-listener %%'"),
        timeout=10,
        what="the cluster's listening connection on the promoted standby",
    )

    # Every acknowledged job is on the promoted standby (synchronous replication) and
    # the same cluster, never restarted, runs each to the end.
    ids = [*acknowledged, first["id"]]

    def all_succeeded() -> bool:
        rows = platform.sql("SELECT id::text, status FROM jobs_job WHERE id = ANY(%s::uuid[])", [ids])
        assert len(rows) == len(ids), f"{len(ids) - len(rows)} of {len(ids)} acknowledged jobs are lost"
        ended = [row for row in rows if row["status"] in ("failed", "cancelled")]
        assert not ended, f"{len(ended)} acknowledged jobs did not succeed: {ended[:3]}"
        return all(row["status"] == "succeeded" for row in rows)

    wait_for(all_succeeded, timeout=60, interval=0.5, what="every acknowledged job to succeed")
    ran_again = platform.sql("SELECT count(*) AS n FROM jobs_job WHERE id = ANY(%s::uuid[]) AND attempts > 1", [ids])
    MEASURED["failover"] = f"{figures}; {ran_again[0]['n']} of them ran a second attempt"
    assert cluster.poll() is None, "the cluster died"
    assert all(proc.poll() is None for proc in platform.processes), "a platform process died"
    platform.stop_clusters()
