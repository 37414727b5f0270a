"""The README's first command, for real: scripts/start serves the API and runs jobs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest
import requests

from .harness import ROOT, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def stop_script(script: subprocess.Popen, log: Path) -> None:
    """Ctrl-C as a terminal sends it (SIGTERM to the script's group: web and cluster stop);
    when that hangs, SIGKILL to the group and to every cluster it started (each in a
    process group of its own)."""
    os.killpg(script.pid, signal.SIGTERM)
    try:
        script.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(script.pid, signal.SIGKILL)
        script.wait()
        for pgid in re.findall(r"a cluster started \(pid (\d+)", log.read_text()):
            try:
                os.killpg(int(pgid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_scripts_start_runs_the_platform(platform, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": platform.database_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),  # not the project's .data/
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the script's own default (dev settings)
    log = open(tmp_path / "start.log", "w")
    script = subprocess.Popen(
        [str(ROOT / "scripts" / "start")],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: requests.get(f"{base}/health", timeout=2).status_code == 200, timeout=400, what="scripts/start"
        )
        api = platform.client(platform.token("start-script"))
        created = api.post(f"{base}/jobs", json={"type": "fibonacci", "params": {"n": 1000}}, timeout=10)
        assert created.status_code == 201
        done = wait_for(
            lambda: (job := api.get(created.headers["Location"], timeout=5).json())["status"] == "succeeded" and job,
            timeout=60,
            what="the job started through scripts/start",
        )
        assert done["result"]["digits"] == 209
        # The README: DEBUG is off, so an unknown URL is the API's problem+json, not
        # Django's debug page.
        missing = requests.get(f"{base}/no-such-page", timeout=5)
        assert missing.status_code == 404
        assert missing.headers["Content-Type"].startswith("application/problem+json"), missing.text[:200]

        # The README's crash, with the command scripts/start printed: kill -9 every process
        # of its cluster, and only its own (other clusters on the machine are not ours).
        # scripts/start starts another, and the web server keeps serving meanwhile.
        def clusters() -> list[psutil.Process]:
            found = []
            for child in psutil.Process(script.pid).children(recursive=True):
                try:
                    if "qcluster" in " ".join(child.cmdline()):
                        found.append(child)
                except psutil.NoSuchProcess:
                    pass
            return found

        before = wait_for(clusters, timeout=30, what="the cluster's processes")
        # Printed once the cluster has started (on stderr, in the same log).
        crash = wait_for(
            lambda: re.findall(r"crash it with  (kill -9 -- -\d+)$", (tmp_path / "start.log").read_text(), re.M),
            timeout=30,
            what="the crash command",
        )[-1]
        assert {os.getpgid(p.pid) for p in before} == {int(crash.rsplit("-", 1)[1])}  # the cluster's group
        subprocess.run(["bash", "-c", crash], check=True, timeout=10)  # as typed in a terminal
        wait_for(
            lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in before),
            timeout=10,
            what="every process of the cluster killed",
        )
        assert requests.get(f"{base}/health", timeout=5).status_code == 200
        wait_for(
            lambda: (found := clusters()) and not {p.pid for p in found} & {p.pid for p in before},
            timeout=60,
            what="a new cluster started by scripts/start",
        )
        again = api.post(f"{base}/jobs", json={"type": "fibonacci", "params": {"n": 10}}, timeout=10)
        wait_for(
            lambda: api.get(again.headers["Location"], timeout=5).json()["status"] == "succeeded",
            timeout=60,
            what="a job run by the new cluster",
        )
    finally:
        stop_script(script, tmp_path / "start.log")
    output = (tmp_path / "start.log").read_text()
    assert "issue_token" in output  # it tells the user how to get a token
    assert "==> migrating the database" in output
    # For the commands of another terminal (with its password hidden, had it one).
    assert f"first export the same DATABASE_URL ({platform.database_url})" in output
    assert "==> the cluster (pid" in output and "starting another" in output
    assert list((tmp_path / "metrics").glob("*.db")) and not (ROOT / ".data" / f"metrics-{port}").exists()


def test_scripts_start_says_it_started_an_embedded_postgresql_and_how_to_stop_it(tmp_path):
    """No DATABASE_URL: an embedded server of this test's own (JOBS_EMBEDDED_DATA in a
    temporary folder), stopped at the end; the developer's .data/postgres is untouched."""
    data = tmp_path / "pg"
    port = free_port()
    env = {
        **os.environ,
        "JOBS_EMBEDDED_DATA": str(data),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "Q_WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    for name in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    log_path = tmp_path / "start.log"
    script = subprocess.Popen(
        [str(ROOT / "scripts" / "start")],
        cwd=tmp_path,
        env=env,
        stdout=open(log_path, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200,
            timeout=300,
            what="scripts/start on an embedded server",
        )
    finally:
        stop_script(script, log_path)
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "-m", "jobplatform.embedded", "stop"],
            cwd=ROOT,
            env=env,
            timeout=60,
        )
    output = log_path.read_text()
    assert "using the embedded PostgreSQL" in output and str(data) in output
    # The URL's ":5432" is no TCP port: the output names the Unix socket it stands for.
    url = re.search(r"^    url:    (\S+)$", output, re.MULTILINE)[1]
    socket = re.search(r"^    socket: (\S+) \(a Unix socket, no TCP port", output, re.MULTILINE)[1]
    folder, name = socket.rsplit("/", 1)
    port = url.rsplit(":", 1)[1].split("/")[0]
    assert url.startswith(f"postgres://postgres@{quote(folder, safe='')}:{port}/") and name == f".s.PGSQL.{port}"
    assert "python -m jobplatform.embedded stop" in output


def test_a_command_that_starts_the_embedded_postgresql_says_so(tmp_path):
    """A command run in a terminal without DATABASE_URL (jobs_top in a second shell, say)
    starts the embedded server and leaves it running: it says so, and how to stop it; a
    command that finds it running says nothing."""
    env = {**os.environ, "JOBS_EMBEDDED_DATA": str(tmp_path / "pg")}
    for name in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    python = str(ROOT / ".venv" / "bin" / "python")

    def check() -> str:
        done = subprocess.run(
            [python, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done.stderr

    try:
        first, second = check(), check()
    finally:
        subprocess.run([python, "-m", "jobplatform.embedded", "stop"], cwd=ROOT, env=env, timeout=60)
    assert f"this started the embedded PostgreSQL in {tmp_path / 'pg'}" in first
    assert f"JOBS_EMBEDDED_DATA={tmp_path / 'pg'} python -m jobplatform.embedded stop" in first
    assert "started the embedded PostgreSQL" not in second
