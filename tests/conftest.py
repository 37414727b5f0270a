from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobs.domain import App, Job, Status

# Tests never write into the source tree: Hypothesis keeps its example database and caches
# in ./.hypothesis unless told otherwise (read when it first touches the disk, after this).
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / f"jobplatform-hypothesis-{os.getuid()}")
)


def make_job(**overrides: Any) -> Job:
    """A Job value for tests that mock the store."""
    now = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "app_id": uuid.uuid4(),
        "type": "fibonacci",
        "params": {"n": 10},
        "metadata": {},
        "status": Status.QUEUED,
        "progress": None,
        "result": None,
        "error": None,
        "attempts": 0,
        "max_attempts": 3,
        "timeout_seconds": 300,
        "run_at": None,
        "lease_expires_at": None,
        "worker": None,
        "envelope_id": 1,
        "enqueued_at": now,
        "cancel_requested_at": None,
        "created_at": now,
        "started_at": None,
        "finished_at": None,
        "updated_at": now,
    }
    values.update(overrides)
    return Job(**values)


@pytest.fixture
def fake_app() -> App:
    return App(id=uuid.uuid4(), name="unit-app", token_id=uuid.uuid4())


ROOT = Path(__file__).resolve().parents[1]


def manage_shell(code: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh ``manage.py shell`` process (settings and discovery run anew)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "jobplatform.settings.test", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def database_url(settings_dict: dict[str, Any], name: str | None = None) -> str:
    """A DATABASE_URL for subprocesses, from a Django connection's settings: every host of
    a multi-host one (HOST="h1,h2", PORT="p1,p2"), with its ``target_session_attrs``."""
    from urllib.parse import quote

    auth = quote(settings_dict.get("USER") or "postgres", safe="")
    if settings_dict.get("PASSWORD"):
        auth += ":" + quote(settings_dict["PASSWORD"], safe="")
    hosts = str(settings_dict.get("HOST") or "127.0.0.1").split(",")
    ports = str(settings_dict.get("PORT") or "").split(",")
    if len(ports) == 1:
        ports *= len(hosts)
    netloc = ",".join(f"{quote(host, safe='')}:{port or 5432}" for host, port in zip(hosts, ports, strict=True))
    url = f"postgres://{auth}@{netloc}/{name or settings_dict['NAME']}"
    target = (settings_dict.get("OPTIONS") or {}).get("target_session_attrs")
    return f"{url}?target_session_attrs={target}" if target else url


#: Which path the property-based tests' examples reached, per test (see test_fuzz.py).
FUZZ_REACH: dict[str, Counter] = {}


#: Figures a test measured, printed at the end of the run ({test: one line}), so a passing
#: run shows them too (print() output is shown only for failures).
MEASURED: dict[str, str] = {}


def pytest_sessionfinish(session: Any) -> None:
    """In a pytest-xdist worker (scripts/test runs the unit and integration tests on two):
    the figures go to the controller, which prints the summary."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["measured"] = dict(MEASURED)
        workeroutput["fuzz_reach"] = {test: dict(reached) for test, reached in FUZZ_REACH.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """The controller's side of ``pytest_sessionfinish``: each worker's figures."""
    output = getattr(node, "workeroutput", {})
    MEASURED.update(output.get("measured", {}))
    for test, reached in output.get("fuzz_reach", {}).items():
        FUZZ_REACH.setdefault(test, Counter()).update(reached)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any, django_db_keepdb: bool) -> Iterator[None]:
    """pytest-django's test database, and before it is dropped, this role's other client
    sessions on it closed (a background thread's connection closing late): otherwise DROP
    DATABASE fails and the database stays behind. Nothing is closed when the database is
    kept (--reuse-db: another run, mutmut's children, may be using it); a role that may
    not close them gets a warning, as pytest-django gives for a failed drop."""
    yield
    if django_db_keepdb:
        return
    import warnings

    from django.db import DatabaseError, connection

    try:
        with django_db_blocker.unblock(), connection.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend' AND usename = current_user"
            )
    except DatabaseError as exc:
        warnings.warn(f"the test database's other sessions were not closed: {exc}", stacklevel=1)


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Scans (marker ``scan``: long deterministic sweeps, .ci/run runs them beside the
    suite) are left out unless a ``-m`` expression names ``scan`` or the test is named on
    the command line (``scripts/test 'tests/e2e/test_schemathesis.py::…[coverage]'``)."""
    if "scan" in (config.option.markexpr or ""):
        return
    named = set(config.args)
    kept, scans = [], []
    for item in items:
        (scans if item.get_closest_marker("scan") and item.nodeid not in named else kept).append(item)
    if scans:
        config.hook.pytest_deselected(items=scans)
        items[:] = kept


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for test, figures in MEASURED.items():
        terminalreporter.write_line(f"measured — {test}: {figures}")
    for test, reached in FUZZ_REACH.items():
        total = sum(reached.values())
        paths = ", ".join(f"{path}: {n}" for path, n in reached.most_common())
        terminalreporter.write_line(f"fuzz reach — {test} ({total} examples): {paths}")


@pytest.fixture(autouse=True)
def _forget_cached_tokens() -> None:
    """Each test starts with this process's token cache empty (tokens and their scopes
    change between tests; the cache's own behaviour is tested on purpose)."""
    from jobs import selectors

    selectors.forget_cached_tokens()
