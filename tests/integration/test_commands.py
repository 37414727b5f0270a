"""Management commands against the real database, and the start-up refusal of qcluster."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from jobs import selectors, services
from tests.conftest import database_url

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_issue_list_revoke_token(db):
    name = f"etl-{uuid.uuid4().hex[:8]}"
    output = run("issue_token", name)
    token = next(line.strip() for line in output.splitlines() if line.strip().startswith("jp_"))
    assert selectors.app_for_token(token=token).name == name
    listing = run("list_tokens")
    assert name in listing and token not in listing
    prefix = token[:10]
    assert "Revoked" in run("revoke_token", prefix)
    assert selectors.app_for_token(token=token) is None
    assert "revoked" in run("list_tokens")
    with pytest.raises(CommandError, match="already revoked"):  # not "Revoked" a second time
        run("revoke_token", prefix)


def test_issue_token_quiet_prints_only_the_token(db):
    token = run("issue_token", f"q-{uuid.uuid4().hex[:8]}", "--quiet").strip()
    assert token.startswith("jp_") and selectors.app_for_token(token=token) is not None


def test_revoke_unknown_token_is_a_command_error(db):
    with pytest.raises(CommandError):
        run("revoke_token", "no-such-token")


def test_jobs_top_once_shows_counts_and_latest(db):
    token, _ = services.token_issue(app_name=f"top-{uuid.uuid4().hex[:8]}")
    app = selectors.app_for_token(token=token)
    job = services.job_create(app=app, type="pi", params={"digits": 5}, metadata={})[0]
    screen = run("jobs_top", "--once")
    assert "queued" in screen and "oldest queued job waiting" in screen
    assert str(job.id) in screen


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_qcluster_refuses_to_start_when_retry_does_not_exceed_timeout():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "jobplatform.settings.test", "Q_TIMEOUT": "7300", "Q_RETRY": "7300"}
    result = _manage("qcluster", env=env)
    assert result.returncode != 0
    assert "must exceed Q_CLUSTER['timeout']" in result.stderr


def test_qinfo_works(db):
    from django.db import connection

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "jobplatform.settings.test",
        "DATABASE_URL": database_url(connection.settings_dict),
    }
    result = _manage("qinfo", env=env)
    assert result.returncode == 0, result.stderr
    assert "Clusters" in result.stdout and "ORM default" in result.stdout
    monitor = _manage("qmonitor", "--run-once", env=env)
    assert monitor.returncode == 0, monitor.stderr
    assert "Host" in monitor.stdout and "Queued" in monitor.stdout


@pytest.mark.parametrize(
    ("missing", "message"), [("SECRET_KEY", "SECRET_KEY must be set"), ("DATABASE_URL", "DATABASE_URL must be set")]
)
def test_production_settings_refuse_to_start_without_secrets(missing, message):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "jobplatform.settings.production",
        "SECRET_KEY": "s3cret",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
    }
    env.pop(missing)
    result = _manage("check", env=env)
    assert result.returncode != 0 and message in result.stderr


def test_production_settings_are_safe_by_default():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "jobplatform.settings.production",
        "SECRET_KEY": "s3cret",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
    }
    env.pop("DEBUG", None)
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.ALLOWED_HOSTS, s.SECURE_PROXY_SSL_HEADER)"
    )
    result = _manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    # No SECURE_PROXY_SSL_HEADER: the scheme is gunicorn's decision, trusting only the proxy.
    assert result.stdout.strip().splitlines()[-1] == "False True ['localhost', '127.0.0.1'] None"


def test_jobs_top_follows_one_job_its_checkpoint_and_its_log(db):
    token, _ = services.token_issue(app_name=f"follow-{uuid.uuid4().hex[:8]}")
    app = selectors.app_for_token(token=token)
    job = services.job_create(app=app, type="countdown", params={"seconds": 5}, metadata={})[0]
    screen = run("jobs_top", "--job", str(job.id), "--once")
    assert f"job {job.id}" in screen and "status queued  try 0/" in screen
    assert "checkpoint: none" in screen and "log: 0 lines, 0 dropped" in screen

    running = services.job_claim(job_id=job.id, worker="host:77")
    services.job_progress(job=running, percent=40.0, message="3 seconds left", milestone=True)
    services.job_checkpoint(job=running, state={"elapsed": 2}, event=True)
    at = running.started_at
    lines = [
        services.log_line(message=f"second {n}", level="warning" if n == 4 else "info", fields={"n": n}, at=at)
        for n in range(5)
    ]
    services.job_log_append(job=running, lines=lines, dropped=2)
    screen = run("jobs_top", "--job", str(job.id), "--once", "--lines", "3")
    assert "status running  try 1/" in screen and "worker host:77" in screen
    assert "[########------------]  40.0%  3 seconds left" in screen
    assert "checkpoint at " in screen and ': {"elapsed":2}' in screen
    assert "log: 5 lines, 2 dropped" in screen
    shown = [line for line in screen.splitlines() if "  a1  " in line]
    assert [line.split("  a1  ")[1].split()[:2] for line in shown] == [
        ["info", "second"],
        ["info", "second"],
        ["warning", "second"],
    ]
    assert shown[-1].endswith('second 4  {"n":4}')


def test_jobs_top_refuses_an_unknown_job(db):
    with pytest.raises(CommandError, match="No job with the id"):
        run("jobs_top", "--job", str(uuid.uuid4()), "--once")
    with pytest.raises(CommandError, match="No job with the id"):
        run("jobs_top", "--job", "not-an-id", "--once")


def test_the_job_follower_reads_only_new_lines(db):
    from jobs.management.commands.jobs_top import JobFollower

    token, _ = services.token_issue(app_name=f"follow-{uuid.uuid4().hex[:8]}")
    app = selectors.app_for_token(token=token)
    job = services.job_claim(
        job_id=services.job_create(app=app, type="countdown", params={"seconds": 5})[0].id, worker="w"
    )

    def write(*messages):
        lines = [services.log_line(message=m, level="info", fields={}, at=job.started_at) for m in messages]
        services.job_log_append(job=job, lines=lines, dropped=0)

    write("one", "two", "three")
    follower = JobFollower(job.id, lines=2)
    assert "three" in follower.render() and [line.message for line in follower.lines] == ["two", "three"]
    write("four")
    follower.PAGE = 1  # catching up takes several pages
    write("five")
    screen = follower.render()
    assert [line.message for line in follower.lines] == ["four", "five"] and "five" in screen


def test_jobs_top_draws_no_escape_sequence_a_job_wrote(db):
    """A job's progress message and log line holding terminal escapes are drawn inert."""
    token, _ = services.token_issue(app_name=f"escapes-{uuid.uuid4().hex[:8]}")
    app = selectors.app_for_token(token=token)
    job = services.job_create(app=app, type="countdown", params={"seconds": 5}, metadata={})[0]
    running = services.job_claim(job_id=job.id, worker="host:78")
    services.job_progress(job=running, percent=10.0, message="half\x1b[2Jway", milestone=False)
    line = services.log_line(message="title\x1b]0;owned\x07", level="info", fields={}, at=running.started_at)
    services.job_log_append(job=running, lines=[line], dropped=0)
    for screen in (run("jobs_top", "--once"), run("jobs_top", "--job", str(job.id), "--once")):
        assert "\x1b" not in screen and "\x07" not in screen
    assert "half[2Jway" in run("jobs_top", "--job", str(job.id), "--once")


@pytest.fixture
def server(db):
    """The test server as the platform reaches it (its connection parameters), and an
    autocommit connection to its maintenance database; what a test makes there (named in
    ``made``: ("DATABASE", name) or ("ROLE", name)) is dropped afterwards."""
    import psycopg2
    from django.db import connection

    params = connection.get_connection_params()
    admin = psycopg2.connect(**{**params, "dbname": "postgres"})
    admin.autocommit = True
    made: list[tuple[str, str]] = []

    def execute(statement: str) -> None:
        with admin.cursor() as cursor:
            cursor.execute(statement)

    try:
        yield params, execute, made
    finally:
        for kind, name in reversed(made):
            execute(f'DROP {kind} IF EXISTS "{name}"')
        admin.close()


def test_create_database_makes_a_missing_database_once_and_leaves_an_existing_one(server, monkeypatch):
    import psycopg2
    from django.db import connection

    params, _, made = server
    assert run("create_database") == ""  # the test database exists: nothing to do
    name = f"jp_created_{uuid.uuid4().hex[:8]}"
    made.append(("DATABASE", name))
    monkeypatch.setattr(connection, "get_connection_params", lambda: {**params, "dbname": name})
    assert run("create_database") == f"==> the database '{name}' did not exist on its server: created it\n"
    psycopg2.connect(**{**params, "dbname": name}).close()
    assert run("create_database") == ""


def test_create_database_says_how_to_make_one_it_may_not_create(server, monkeypatch):
    from django.db import connection

    params, execute, made = server
    role = f"jp_nocreate_{uuid.uuid4().hex[:8]}"
    execute(f"CREATE ROLE {role} LOGIN NOCREATEDB")
    made.append(("ROLE", role))
    monkeypatch.setattr(connection, "get_connection_params", lambda: {**params, "dbname": "jp_missing_x", "user": role})
    with pytest.raises(CommandError) as refused:
        run("create_database")
    # The command for this server, not the local default one.
    createdb = f"createdb -h {params['host']} -p {params['port']} -U {role} jp_missing_x"
    assert str(refused.value) == (
        f"The database 'jp_missing_x' does not exist, and the role '{role}' may not create one (CREATEDB): "
        f"create it ({createdb}) or set DATABASE_URL to one that exists."
    )


def test_a_command_on_a_database_never_migrated_says_so_without_a_traceback(server):
    from django.db import connection

    _, execute, made = server
    name = f"jp_empty_{uuid.uuid4().hex[:8]}"
    execute(f'CREATE DATABASE "{name}"')
    made.append(("DATABASE", name))
    url = database_url(connection.settings_dict, name)
    result = _manage("jobs_top", "--once", env={**os.environ, "DATABASE_URL": url})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert re.match(rf"jobs_top: the database .{name}. has \d+ migrations to apply \(relation ", result.stderr)
    assert "Run `python manage.py migrate` first, or set DATABASE_URL" in result.stderr
