"""Real processes for end-to-end tests: a private database, gunicorn, qcluster."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    # Schedules that fire every second (the default floor is 10 s).
    "JOBS_SCHEDULE_MIN_EVERY": "1",
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
        # Not yet: nothing listens, or a server still booting its workers holds the request.
        except (requests.ConnectionError, requests.Timeout, psycopg2.OperationalError):
            last = None
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def all_log_lines(api: requests.Session, job_url: str, *, page: int = 500) -> list[dict[str, Any]]:
    """Every line of a job's log over HTTP, following ``next`` from the first page of
    ``page`` lines (a small page makes the walk cross page boundaries)."""
    lines: list[dict[str, Any]] = []
    url: str | None = f"{job_url}/logs?limit={page}"
    while url:
        answer = api.get(url, timeout=10)
        assert answer.status_code == 200, answer.text
        lines += answer.json()["results"]
        url = answer.json()["next"]
    return lines


#: The migrated templates of this run, by (server, settings, extra apps): the template's
#: name and its server, each dropped at exit.
_TEMPLATES: dict[tuple[str, ...], tuple[str, dict[str, Any]]] = {}


def _migrated_template(platform: Platform) -> str:
    """A database migrated once per test run for ``platform``'s server and apps; nothing
    ever connects to it after its migrate, so it can be copied. Kept only once its migrate
    succeeded: a failed one is dropped, and the next platform tries again."""
    env = platform.env
    key = (platform.server.get("HOST") or "", str(platform.server.get("PORT") or ""), env["DJANGO_SETTINGS_MODULE"],
           env.get("EXTRA_INSTALLED_APPS", ""))  # fmt: skip
    if key not in _TEMPLATES:
        name = f"jobplatform_e2e_template_{uuid.uuid4().hex[:10]}"
        conn = platform._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        try:
            platform.manage(
                "migrate", "--no-input", "-v", "0", env={"DATABASE_URL": database_url(platform.server, name)}
            )
        except BaseException:
            _drop_template(name, platform.server)
            raise
        if not _TEMPLATES:
            atexit.register(_drop_templates)
        _TEMPLATES[key] = (name, dict(platform.server))
    return _TEMPLATES[key][0]


def _drop_template(name: str, server: dict[str, Any]) -> None:
    conn = psycopg2.connect(database_url(server, "postgres"), connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def _drop_templates() -> None:
    """Each template on its own server; one that cannot be dropped (a throwaway server
    already gone with it) does not keep the others."""
    for name, server in _TEMPLATES.values():
        try:
            _drop_template(name, server)
        except psycopg2.Error as exc:
            print(f"e2e: template database {name} not dropped: {exc}", file=sys.stderr)


@contextmanager
def running_platform(
    server: dict[str, Any], log_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Platform]:
    """A private database (migrated) with a real gunicorn; everything removed after."""
    instance = Platform(server, log_dir, extra_env)
    instance.create_database()
    try:
        instance.start_web()
        yield instance
    finally:
        instance.stop_all()
        instance.drop_database()


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
        conn = psycopg2.connect(database_url(self.server, "postgres"))
        conn.autocommit = True
        return conn

    def create_database(self, *, migrate: bool = True) -> None:
        """Empty, or (``migrate``) a copy of a database this run migrated once for the same
        apps (``CREATE DATABASE … TEMPLATE``: a fifth of a second instead of a migrate). On
        another server than the suite's (a throwaway server, one platform each) a template
        would save nothing: that database is migrated itself."""
        from django.conf import settings

        suite = settings.DATABASES["default"]
        on_suite_server = (self.server.get("HOST"), str(self.server.get("PORT"))) == (
            suite.get("HOST"),
            str(suite.get("PORT")),
        )
        template = _migrated_template(self) if migrate and on_suite_server else None
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.name}"' + (f' TEMPLATE "{template}"' if template else ""))
        finally:
            conn.close()
        if migrate and template is None:
            self.manage("migrate", "--no-input", "-v", "0")

    def drop_database(self) -> None:
        """This platform's database, and the demo source create_demo_source made beside it."""
        from jobs.services.demo_source import DemoSource

        demo = DemoSource.beside(self.name)
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
                cur.execute(f'DROP DATABASE IF EXISTS "{demo.database}" WITH (FORCE)')
                cur.execute(f'DROP ROLE IF EXISTS "{demo.role}"')
        finally:
            conn.close()

    def sql(self, query: str, params: Any = None, *, database: str | None = None) -> list[dict[str, Any]]:
        """A query on this platform's database (or on ``database``, of the same server)."""
        url = self.database_url if database is None else database_url(self.server, database)
        conn = psycopg2.connect(url)
        try:
            conn.autocommit = True
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute(query, params)
                return [dict(r) for r in cur.fetchall()] if cur.description else []
        finally:
            conn.close()

    # -- processes ---------------------------------------------------------------------------
    def manage(self, *args: str, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=180,
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

    def start_web(self, *, config: Path | None = None) -> subprocess.Popen:
        """gunicorn on this platform's port: short test options, or ``config`` (a
        gunicorn config file such as the shipped docker/gunicorn.conf.py) with only the
        address and the number of workers given on the command line."""
        options = ["--env", f"DJANGO_SETTINGS_MODULE={SETTINGS}", "--graceful-timeout", "5"]
        if config is not None:
            options = ["-c", str(config)]
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
                str(self.web_workers),
                *options,
            ],
        )
        wait_for(
            lambda: requests.get(f"{self.base_url}/health", timeout=2).status_code == 200, timeout=60, what="gunicorn"
        )
        return proc

    def start_cluster(self, *args: str, **env: str) -> subprocess.Popen:
        """A qcluster (``args``: its options, e.g. ``--queue high``); ``env`` sets environment
        variables for this one (``Q_POLL="60"``)."""
        proc = self._spawn("qcluster", [sys.executable, "manage.py", "qcluster", *args], env)
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
        # A teardown, not a test of the graceful stop (test_crashes has those): what has not
        # stopped within two seconds (a worker holding a client's keep-alive connection
        # for gunicorn's graceful timeout) is killed.
        deadline = time.monotonic() + 2
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
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


#: The shipped proxy configuration: docker/compose.yaml mounts this very file.
NGINX_TEMPLATE = ROOT / "docker" / "nginx" / "jobplatform.conf.template"
NGINX_TEMPLATE_VARIABLES = ("NGINX_PORT", "WEB_UPSTREAM", "JOBS_MAX_BODY_BYTES")


def render_nginx_template(values: dict[str, str]) -> str:
    """The template as the nginx image renders it (envsubst of exactly these variables)."""
    text = NGINX_TEMPLATE.read_text()
    assert set(values) == set(NGINX_TEMPLATE_VARIABLES), values
    for name, value in values.items():
        assert f"${{{name}}}" in text, f"{name} is not in {NGINX_TEMPLATE}"
        text = text.replace(f"${{{name}}}", value)
    assert "${" not in text, "the template uses a variable the image would not render"
    return text


class Nginx:
    """The Debian nginx binary running the shipped server configuration on a free port,
    everything it writes (logs, pid, temporary files) in a private folder."""

    def __init__(self, upstream_port: int, max_body_bytes: int = 1024 * 1024) -> None:
        if shutil.which("nginx") is None:
            raise AssertionError("nginx is not installed: apt-get install nginx (.ci/run does)")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # mkdtemp is private to root; nginx's workers (as nobody, when started by root)
        # must reach the temporary folders the master creates for them here.
        self.dir = Path(tempfile.mkdtemp(prefix="jobplatform-nginx-"))
        self.dir.chmod(0o755)
        server = render_nginx_template(
            {
                "NGINX_PORT": f"127.0.0.1:{self.port}",
                "WEB_UPSTREAM": f"127.0.0.1:{upstream_port}",
                "JOBS_MAX_BODY_BYTES": str(max_body_bytes),
            }
        )
        (self.dir / "jobplatform.conf").write_text(server)
        # The main context the nginx image's own nginx.conf provides, pointed at this folder.
        temp_paths = "\n".join(
            f"  {kind}_temp_path {self.dir / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.dir / "nginx.conf").write_text(
            f"worker_processes 1;\npid {self.dir / 'nginx.pid'};\nerror_log {self.dir / 'error.log'} info;\n"
            "daemon off;\nevents { worker_connections 1024; }\n"
            f"http {{\n  access_log {self.access_log};\n{temp_paths}\n"
            f"  include {self.dir / 'jobplatform.conf'};\n}}\n"
        )
        self.proc: subprocess.Popen | None = None

    @property
    def access_log(self) -> Path:
        return self.dir / "access.log"

    def _command(self, *extra: str) -> list[str]:
        return [
            "nginx",
            "-p",
            str(self.dir),
            "-c",
            str(self.dir / "nginx.conf"),
            "-e",
            str(self.dir / "error.log"),
            *extra,
        ]

    def start(self) -> None:
        check = subprocess.run(self._command("-t"), capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        log = open(self.dir / "stdout.log", "w")
        self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def listening() -> bool:
            assert self.proc is not None and self.proc.poll() is None, (self.dir / "error.log").read_text()
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, timeout=20, what="nginx")

    def stop(self) -> None:
        """Stop the master and its workers (one process group), then remove the folder."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                pass
            Platform.kill9(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)
