"""django-q2's monitors, jobs_top and /ready against real clusters, in real terminals (tmux).

Each cluster is a real ``qcluster`` process; each monitor is a separate process that
can only know about a cluster through the shared cache (here the database cache; with
REDIS_URL set, also Redis). Screens are read with ``tmux capture-pane``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psutil
import pytest
import requests

from .harness import ROOT, Platform, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

#: django-q2's Stat records, decoded by django-q2 itself, in a fresh process. Not through
#: ``Stat.get_all()``: its ``get_stats`` skips the record after each expired one (it prunes
#: its key list while iterating over it), so a live cluster would be missing now and then.
STATS_CODE = """
import json
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.signing import SignedPackage
cache = get_broker().cache
keys = cache.get(Conf.Q_STAT) or []
packs = cache.get_many(keys) if keys else {}
print(json.dumps([
    {"id": str(s.cluster_id), "host": s.host, "pid": s.pid, "status": str(s.status),
     "workers": list(s.workers), "reincarnations": s.reincarnations, "timestamp": s.timestamp.isoformat()}
    for s in (SignedPackage.loads(packs[key]) for key in keys if packs.get(key))
]))
"""


def stats(platform: Platform) -> list[dict[str, Any]]:
    return json.loads(platform.manage("shell", "-c", STATS_CODE).strip().splitlines()[-1])


def reported(platform: Platform, cluster: subprocess.Popen) -> dict[str, Any]:
    """This cluster's status record, once it has saved one."""
    return wait_for(
        lambda: next((s for s in stats(platform) if s["pid"] == cluster.pid), None),
        timeout=60,
        interval=0.5,
        what=f"cluster {cluster.pid} to report",
    )


def qinfo(platform: Platform) -> tuple[int, int]:
    """``manage.py qinfo``'s cluster and worker counts (piped: "Clusters: 1" and "Workers: 2" lines)."""
    out = platform.manage("qinfo")
    match = re.search(r"^Clusters:\s+(\d+)\nWorkers:\s+(\d+)$", out, re.MULTILINE)
    assert match, out
    return int(match[1]), int(match[2])


def worker_pids(cluster: subprocess.Popen) -> set[int]:
    """The cluster's processes, from the operating system (the truth the monitors must match)."""
    return {child.pid for child in psutil.Process(cluster.pid).children(recursive=True)}


def answer(url: str, status: int, *, timeout: float) -> requests.Response:
    """The first answer from ``url`` with this status (a 503 Response is falsy: wrap it)."""
    return wait_for(
        lambda: [r for r in [requests.get(url, timeout=10)] if r.status_code == status],
        timeout=timeout,
        what=f"{url} to answer {status}",
    )[0]


class Tmux:
    """A private tmux server: each session is a real terminal running one command."""

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"jobplatform-test-{uuid.uuid4().hex[:8]}"
        self.env = env

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], env=self.env, capture_output=True, text=True, check=True, timeout=30
        ).stdout

    def start(self, name: str, command: list[str], *, width: int = 200, height: int = 50) -> None:
        # The shell keeps the pane (and any error) on screen if the command exits.
        shell = f"{shlex.join(command)}; echo EXITED $?; sleep 600"
        self._tmux("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), "-c", str(ROOT), shell)

    def screen(self, name: str) -> str:
        return self._tmux("capture-pane", "-p", "-t", name)

    def wait_screen(self, name: str, pattern: str, *, timeout: float = 30) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            match = re.search(pattern, self.screen(name), re.MULTILINE)
            if match:
                found.append(match)
            return bool(match)

        try:
            wait_for(seen, timeout=timeout, interval=0.3, what=f"{pattern!r} on the {name} screen")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- screen ---\n{self.screen(name)}") from None
        return found[-1]

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], env=self.env, capture_output=True, timeout=30)


@pytest.fixture
def tmux(platform: Platform) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (.ci/run installs it)")
    terminal = Tmux({**platform.env, "TERM": "xterm-256color"})
    try:
        yield terminal
    finally:
        terminal.close()


@pytest.fixture(autouse=True)
def no_cluster_left(platform: Platform) -> Iterator[None]:
    yield
    platform.stop_clusters()


def test_qinfo_and_qmemory_report_every_cluster_and_its_workers(platform):
    assert qinfo(platform) == (0, 0)
    first = platform.start_cluster()
    wait_for(lambda: qinfo(platform) == (1, 2), timeout=60, interval=0.5, what="qinfo to report 1 cluster, 2 workers")

    [stat] = stats(platform)
    assert stat["pid"] == first.pid and stat["host"] == socket.gethostname()
    assert len(stat["workers"]) == 2 and set(stat["workers"]) <= worker_pids(first)

    # qmemory measures the same cluster's processes (on this host).
    memory = platform.manage("qmemory", "--run-once")
    assert stat["id"][-8:] in memory and "NO_PROCESSES_FOUND" not in memory, memory

    # A second cluster, another process: both show; kill one and it drops out by itself.
    second = platform.start_cluster()
    wait_for(lambda: qinfo(platform) == (2, 4), timeout=60, interval=0.5, what="qinfo to report 2 clusters")
    assert {s["pid"] for s in stats(platform)} == {first.pid, second.pid}
    platform.kill9(first)
    wait_for(lambda: qinfo(platform) == (1, 2), timeout=30, interval=0.5, what="the killed cluster to drop out")
    assert [s["pid"] for s in stats(platform)] == [second.pid]


def test_qmonitor_in_a_terminal_shows_each_cluster_live(platform, tmux):
    first = platform.start_cluster()
    stat = reported(platform, first)
    tmux.start("qmonitor", [sys.executable, "manage.py", "qmonitor"])
    # Columns: Host, Id (last 8 characters), State, Pool (workers), TQ, RQ, RC, Up.
    row = tmux.wait_screen("qmonitor", rf"^\s*(\S+)\s+{stat['id'][-8:]}\s+(\w+)\s+(\d+)\s")
    assert socket.gethostname().startswith(row[1])
    assert row[2] in ("Idle", "Working", "Starting") and row[3] == "2"

    # A cluster started while the monitor runs appears on the same screen.
    second = platform.start_cluster()
    other = reported(platform, second)
    tmux.wait_screen("qmonitor", rf"^\s*\S+\s+{other['id'][-8:]}\s+\w+\s+2\s")
    assert first.poll() is None


def test_jobs_top_in_a_terminal_shows_clusters_and_the_running_jobs_progress(platform, tmux):
    platform.start_cluster()
    api = platform.client(platform.token("e2e-top"))
    job = platform.create_job(api, {"type": "countdown", "params": {"seconds": 6}})
    tmux.start("top", [sys.executable, "manage.py", "jobs_top", "--interval", "0.5"])
    tmux.wait_screen("top", r"clusters \(django-q2\): 1, workers: 2")
    line = re.compile(rf"^\s+{job['id']}\s+countdown\s+try 1/\d+\s+\[([#-]{{20}})\]\s+([\d.]+)%", re.MULTILINE)

    def progress() -> tuple[str, float] | None:
        match = line.search(tmux.screen("top"))
        return (match[1], float(match[2])) if match else None

    first = wait_for(progress, timeout=30, interval=0.2, what="the running job's progress bar")
    later = wait_for(
        lambda: (now := progress()) and now[1] > first[1] and now, timeout=30, interval=0.2, what="the bar to move"
    )
    assert later[0].count("#") >= first[0].count("#")
    platform.wait_status(job["id"], ("succeeded",), timeout=30)
    tmux.wait_screen("top", r"running jobs: 0")
    finished = tmux.wait_screen("top", r"finished in the last 60 s: (\d+) \((\d+) succeeded")
    assert int(finished[2]) >= 1


def test_jobs_top_shows_a_cluster_whose_worker_runs_a_job_as_working(platform, tmux):
    """django-q2 reports a cluster Idle whenever its internal queues are empty, which they
    are while its workers run the jobs they took; jobs_top's STATE and JOBS come from the
    jobs table: the running jobs whose worker is one of the cluster's processes."""
    cluster = platform.start_cluster()
    stat = reported(platform, cluster)
    api = platform.client(platform.token("e2e-working"))
    job = platform.create_job(api, {"type": "countdown", "params": {"seconds": 8}})
    platform.wait_status(job["id"], ("running",), timeout=30)
    [row] = platform.sql("SELECT worker FROM jobs_job WHERE id = %s", [job["id"]])
    assert row["worker"] in {f"{stat['host']}:{pid}" for pid in stat["workers"]}

    tmux.start("top", [sys.executable, "manage.py", "jobs_top", "--interval", "0.5"])
    line = tmux.wait_screen("top", rf"^\s+{re.escape(stat['host'])}\s+{stat['id']}\s+(\w+)\s+2\s+(\d+)\s")
    assert (line[1], line[2]) == ("Working", "1")
    # Meanwhile django-q2's own record says Idle: the state jobs_top corrects.
    wait_for(
        lambda: any(s["pid"] == cluster.pid and s["status"] == "Idle" for s in stats(platform)),
        timeout=10,
        interval=0.3,
        what="django-q2 to report the cluster Idle while its worker runs the job",
    )
    assert platform.job(job["id"])["status"] == "running"
    tmux.wait_screen("top", rf"^\s+\S+\s+{stat['id']}\s+Working\s+2\s+1\s")

    platform.wait_status(job["id"], ("succeeded",), timeout=30)
    tmux.wait_screen("top", rf"^\s+\S+\s+{stat['id']}\s+Idle\s+2\s+0\s")


def test_qinfo_shows_the_jobs_real_figures_in_a_terminal_and_piped(platform, tmux):
    platform.start_cluster()
    api = platform.client(platform.token("e2e-qinfo"))
    done = platform.create_job(api, {"type": "fibonacci", "params": {"n": 10}})
    platform.wait_status(done["id"], ("succeeded",), timeout=60)
    wait_for(lambda: qinfo(platform) == (1, 2), timeout=60, interval=0.5, what="qinfo to report the cluster")
    [counts] = platform.sql(
        "SELECT count(*) FILTER (WHERE status = 'succeeded') AS ok, count(*) FILTER (WHERE status = 'failed') AS bad "
        "FROM jobs_job"
    )
    assert counts["ok"] >= 1

    # In a terminal: django-q2's table, three figures a row.
    tmux.start("qinfo", [sys.executable, "manage.py", "qinfo"])
    tmux.wait_screen("qinfo", r"^Clusters\s+1\s+Workers\s+2\s+Restarts\s+\d+\s*$")
    row = tmux.wait_screen("qinfo", r"^Queued\s+\d+\s+Successes\s+(\d+)\s+Failures\s+(\d+)\s*$")
    assert (int(row[1]), int(row[2])) == (counts["ok"], counts["bad"])
    tmux.wait_screen("qinfo", r"^Scheduled\s+\d+\s+Jobs/\w+\s+[\d.]+\s+Avg time\s+[\d.]+\s*$")
    tmux.wait_screen("qinfo", r"django-q2's task table is not used")

    # Piped (no terminal): one "name: value" a line, never "Clusters1Workers2Restarts0".
    tmux.start("piped", ["sh", "-c", f"{shlex.quote(sys.executable)} manage.py qinfo | cat"])
    tmux.wait_screen("piped", r"^EXITED 0")
    screen = tmux.screen("piped")
    assert re.search(r"^Clusters:\s+1$", screen, re.MULTILINE) and re.search(r"^Workers:\s+2$", screen, re.MULTILINE)
    assert re.search(rf"^Successes:\s+{counts['ok']}$", screen, re.MULTILINE), screen
    assert "Clusters1" not in screen.replace(" ", "")


def test_monitors_run_with_another_secret_key_say_they_cannot_read_the_clusters(platform, tmux):
    """django-q2 signs each cluster's status with SECRET_KEY and skips what it cannot
    verify: with another key its monitors showed 0 clusters, and nothing else."""
    cluster = platform.start_cluster()
    # Only this cluster's report, and no other: the cluster the previous test killed left
    # one that lives on for up to 3 s (django-q2's expiry), which a qinfo count alone could
    # mistake for this one's, and the monitors below would then count two.
    wait_for(
        lambda: [s["pid"] for s in stats(platform)] == [cluster.pid],
        timeout=60,
        interval=0.5,
        what="this cluster's report, and only its",
    )
    other_key = ["env", "SECRET_KEY=not-the-clusters-key", sys.executable, "manage.py"]
    note = r"1 cluster status report is signed with another SECRET_KEY than this process's"

    tmux.start("qinfo", [*other_key, "qinfo"])
    tmux.wait_screen("qinfo", r"^Clusters\s+0\s+Workers\s+0")
    tmux.wait_screen("qinfo", rf"^Warning: {note}")
    tmux.start("top", [*other_key, "jobs_top", "--interval", "0.5"])
    tmux.wait_screen("top", r"clusters \(django-q2\): 0, workers: 0")
    tmux.wait_screen("top", rf"^\s+! {note}")
    tmux.start("qmonitor", [*other_key, "qmonitor"])
    tmux.wait_screen("qmonitor", rf"^CommandError: {note}")
    tmux.wait_screen("qmonitor", r"^EXITED 1")

    # With the clusters' key the same cluster is there, and nothing is said.
    assert qinfo(platform) == (1, 2)
    assert "SECRET_KEY" not in platform.manage("qinfo")


def test_ready_follows_the_clusters(platform):
    url = f"{platform.base_url}/ready"
    wait_for(lambda: not stats(platform), timeout=30, interval=0.5, what="no cluster reporting")
    response = requests.get(url, timeout=10)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok", "cluster": "none seen"}

    cluster = platform.start_cluster()
    ready = answer(url, 200, timeout=60)
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "cluster": "ok"}}

    # A cluster that stops reporting is no longer "seen" a few seconds later.
    platform.kill9(cluster)
    gone = answer(url, 503, timeout=30)
    assert gone.json()["checks"]["cluster"] == "none seen"
    # Liveness is not readiness: /health still says the process and the database are fine.
    assert requests.get(f"{platform.base_url}/health", timeout=10).status_code == 200


def test_jobs_top_follows_one_job_its_checkpoint_and_its_log_lines(platform, tmux):
    platform.start_cluster()
    api = platform.client(platform.token("e2e-follow"))
    job = platform.create_job(api, {"type": "test_resumable", "params": {"steps": 12, "step_seconds": 0.4}})
    tmux.start("follow", [sys.executable, "manage.py", "jobs_top", "--job", job["id"], "--interval", "0.5"])
    tmux.wait_screen("follow", rf"job {job['id']}")
    first = tmux.wait_screen("follow", r'checkpoint at [\d:]+: \{"done":(\d+)\}', timeout=30)
    tmux.wait_screen("follow", r"  a1  info     step \d+ done")
    later = tmux.wait_screen("follow", rf'checkpoint at [\d:]+: \{{"done":(?!{first[1]}\}})(\d+)\}}', timeout=30)
    assert int(later[1]) > int(first[1])
    tmux.wait_screen("follow", r"status succeeded  try 1/", timeout=30)
    screen = tmux.screen("follow")
    assert "log: 13 lines, 0 dropped" in screen and "a1  info     step 12 done" in screen
    assert "starting from the first step" in screen  # the 20 latest lines: all 13 fit


def test_ready_and_health_say_503_when_the_database_is_down(platform, tmp_path):
    port = free_port()
    env = {**platform.env, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"}
    with open(tmp_path / "gunicorn.log", "w") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "jobplatform.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    platform.processes.append(web)  # stopped with the platform, whatever happens here
    response = answer(f"http://127.0.0.1:{port}/ready", 503, timeout=60)
    assert response.headers["Retry-After"]
    checks = response.json()["checks"]
    assert checks["database"].startswith("unavailable: ")
    assert checks["migrations"] == "unknown: the database is unavailable"
    assert checks["cluster"].startswith("unknown: the shared cache cannot be read")
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 503
    platform.kill9(web)


def test_a_cluster_reports_again_right_after_its_database_connections_are_cut(platform):
    """django-q2's sentinel never closes a broken connection itself: with Django's plain
    database cache its status stays gone until django-q2 happens to restart a process
    (its pusher gives up 10 s after a failed fetch; a restart closes every connection).
    jobs.cache drops the broken connection at the next save, so no restart is needed."""
    cluster = platform.start_cluster()
    reported(platform, cluster)
    cut = platform.sql(
        "SELECT clock_timestamp() AS at, count(pg_terminate_backend(pid)) AS cut FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )[0]
    assert cut["cut"] >= 1

    def fresh() -> dict[str, Any] | None:
        return next(
            (
                s
                for s in stats(platform)
                if s["pid"] == cluster.pid and datetime.fromisoformat(s["timestamp"]) > cut["at"]
            ),
            None,
        )

    first = wait_for(fresh, timeout=30, interval=0.3, what="a status saved after the cut")
    assert first["reincarnations"] == 0, "the status came back only once django-q2 restarted a process"
    time.sleep(4)  # longer than a status record lives (3 s): only fresh reports remain
    assert qinfo(platform) == (1, 2)
    assert fresh()


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
def test_monitors_work_through_redis_when_cache_url_is_set(platform, monkeypatch):
    import redis

    prefix = f"jobplatform-test-{uuid.uuid4().hex[:8]}"
    url = os.environ["REDIS_URL"]
    client = redis.Redis.from_url(url)
    monkeypatch.setitem(platform.env, "CACHE_URL", url)
    monkeypatch.setitem(platform.env, "CACHE_KEY_PREFIX", prefix)
    try:
        cluster = platform.start_cluster()
        wait_for(lambda: qinfo(platform) == (1, 2), timeout=60, interval=0.5, what="qinfo through Redis")
        assert [s["pid"] for s in stats(platform)] == [cluster.pid]
        assert any(key.startswith(f"{prefix}:".encode()) for key in client.scan_iter(match=f"{prefix}:*"))
        # The database cache knows nothing of it: the status really went through Redis.
        monkeypatch.delitem(platform.env, "CACHE_URL")
        assert qinfo(platform) == (0, 0)
    finally:
        platform.stop_clusters()
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
