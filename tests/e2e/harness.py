"""Real processes for end-to-end tests: a private database, gunicorn, qcluster."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras
import requests

from tests.conftest import database_url

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "jobplatform.settings.test"

#: Short intervals so crash tests finish in seconds (all are ordinary settings).
FAST = {
    "JOBS_HEARTBEAT_INTERVAL": "1",
    "JOBS_LEASE_SECONDS": "4",
    "JOBS_MAINTENANCE_INTERVAL": "1",
    "JOBS_REDELIVER_AFTER": "5",
    "JOBS_BACKOFF_BASE": "0.2",
    "JOBS_BACKOFF_CAP": "1",
    "JOBS_SHUTDOWN_GRACE": "3",
    "Q_WORKERS": "2",
    "LOG_LEVEL": "INFO",
    # Misbehaving job types for crash tests, installed like any extra app.
    "EXTRA_INSTALLED_APPS": "tests.crashapp",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (requests.ConnectionError, psycopg2.OperationalError):
            last = None
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Platform:
    """One private database with its own web server and clusters."""

    def __init__(self, server: dict[str, Any], log_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.server = server  # HOST, PORT, USER, PASSWORD of the test PostgreSQL
        self.name = f"jobplatform_e2e_{uuid.uuid4().hex[:10]}"
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []
        self.clusters: list[subprocess.Popen] = []
        self.web_workers = 2
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url(self.server, self.name)
        self.env = {
            **os.environ,
            **FAST,
            **(extra_env or {}),
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "DATABASE_URL": self.database_url,
            "PYTHONUNBUFFERED": "1",
        }

    # -- database --------------------------------------------------------------------------
    def _admin(self) -> Any:
        conn = psycopg2.connect(
            dbname="postgres",
            host=self.server["HOST"] or "127.0.0.1",
            port=self.server["PORT"] or 5432,
            user=self.server["USER"] or "postgres",
            password=self.server.get("PASSWORD") or None,
        )
        conn.autocommit = True
        return conn

    def create_database(self) -> None:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            conn.close()
        self.manage("migrate", "--no-input", "-v", "0")

    def drop_database(self) -> None:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            conn.close()

    def sql(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        conn = psycopg2.connect(self.database_url)
        try:
            conn.autocommit = True
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute(query, params)
                return [dict(r) for r in cur.fetchall()] if cur.description else []
        finally:
            conn.close()

    # -- processes ---------------------------------------------------------------------------
    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180
        )
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}-{len(self.processes)}.log", "w")
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(proc)
        return proc

    def start_web(self) -> subprocess.Popen:
        proc = self._spawn(
            "gunicorn",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "jobplatform.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--env",
                f"DJANGO_SETTINGS_MODULE={SETTINGS}",
                "--graceful-timeout",
                "5",
            ],
        )
        wait_for(
            lambda: requests.get(f"{self.base_url}/health", timeout=2).status_code == 200, timeout=60, what="gunicorn"
        )
        return proc

    def start_cluster(self, **env: str) -> subprocess.Popen:
        """A qcluster; ``env`` sets environment variables for this one (``Q_POLL="60"``)."""
        proc = self._spawn("qcluster", [sys.executable, "manage.py", "qcluster"], env)
        self.clusters.append(proc)
        return proc

    def stop_clusters(self) -> None:
        """kill -9 every cluster this platform started (tests leave none behind)."""
        for proc in self.clusters:
            self.kill9(proc)
        self.clusters.clear()

    def job(self, job_id: str) -> dict[str, Any]:
        rows = self.sql("SELECT * FROM jobs_job WHERE id = %s", [job_id])
        assert rows, f"job {job_id} is not in the database"
        return rows[0]

    def events(self, job_id: str) -> list[dict[str, Any]]:
        return self.sql("SELECT kind, attempt, data FROM jobs_event WHERE job_id = %s ORDER BY id", [job_id])

    def wait_status(self, job_id: str, statuses: tuple[str, ...], timeout: float) -> dict[str, Any]:
        return wait_for(
            lambda: (row := self.job(job_id))["status"] in statuses and row,
            timeout=timeout,
            what=f"job {job_id} to reach {statuses}",
        )

    @staticmethod
    def kill9(proc: subprocess.Popen) -> None:
        """kill -9 the whole process group: the cluster and every process it forked,
        including any that outlived their parent (a process group outlives its leader)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            self.kill9(proc)  # leave nothing behind, whatever the group's leader did

    # -- API -------------------------------------------------------------------------------
    def token(self, app_name: str) -> str:
        return self.manage("issue_token", app_name, "--quiet").strip()

    def client(self, token: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        return session

    def create_job(self, session: requests.Session, body: dict[str, Any]) -> dict[str, Any]:
        response = session.post(f"{self.base_url}/jobs", json=body, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()
