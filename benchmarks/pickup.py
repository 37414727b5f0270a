"""Pickup latency on an idle cluster: django-q2's polling ORM broker vs ListeningORM, same run.

    .venv/bin/python benchmarks/pickup.py [--samples 100] [--json pickup.json]

Creates a scratch database on the server the settings point at (DATABASE_URL, else the
embedded one; it must be on this machine), migrates it, starts gunicorn on 127.0.0.1 and
then, for each broker in turn, one ``qcluster``. Against the idle cluster it creates jobs
one at a time over HTTP (``POST /jobs``, trivial ``fibonacci`` n=1), waits for each to
finish, pauses a random 50 to 250 ms (so creates do not fall in step with the poll) and
creates the next. Pickup is ``started_at - created_at`` of each job, read from the
database (both stamped by PostgreSQL's clock). Prints p50/p99/max per broker and the
ratio; stops everything it started and drops the scratch database.

For a larger benchmark command: ``measure(samples=…)`` returns the same figures as a dict.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder is sys.path[0]: the project's root takes its place, so the
# package's modules are imported as benchmarks.* and benchmarks/profile.py does not hide
# the standard library's profile.
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "benchmarks":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.processes import free_port  # noqa: E402
from benchmarks.report import percentile  # noqa: E402

#: The brokers compared, as the environment that selects them (Q_LISTEN, see docs/configuration.md).
BROKERS = {
    "orm (django-q2, polls)": {"Q_LISTEN": "false"},
    "listen (LISTEN/NOTIFY)": {"Q_LISTEN": "true"},
}
LOCAL_HOSTS = {"", "127.0.0.1", "localhost", "::1"}


def _wait(predicate: Any, *, timeout: float, what: str, interval: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except Exception:  # the process is still starting
            result = None
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"no {what} within {timeout}s")


def measure(*, samples: int = 100, timeout: float = 300.0, seed: int = 8) -> dict[str, Any]:
    """Run the comparison; return ``{"brokers": {name: {p50_ms, p99_ms, …}}, "ratio_p50": …}``."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobplatform.settings.test")
    import django

    django.setup()
    import psycopg2
    import requests
    from django.conf import settings

    from tests.conftest import database_url

    server = dict(settings.DATABASES["default"])
    if (server.get("HOST") or "") not in LOCAL_HOSTS:
        raise SystemExit(f"refusing to benchmark against {server['HOST']}: only this machine (127.0.0.1)")
    deadline = time.monotonic() + timeout
    rng = random.Random(seed)
    scratch = f"jobplatform_pickup_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(database_url(server, "postgres"))
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{scratch}"')
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(server, scratch),
        "DJANGO_SETTINGS_MODULE": "jobplatform.settings.test",
        "LOG_LEVEL": "WARNING",
    }
    processes: list[subprocess.Popen] = []

    def spawn(args: list[str], extra: dict[str, str] | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**env, **(extra or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        processes.append(proc)
        return proc

    def stop(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    conn = None
    try:
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=180)
        token = subprocess.run(
            [*manage, "issue_token", "pickup-bench", "--quiet"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
        base = f"http://127.0.0.1:{port}"
        spawn([sys.executable, "-m", "gunicorn", "jobplatform.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"])
        http = requests.Session()
        http.headers["Authorization"] = f"Token {token}"
        _wait(lambda: http.get(f"{base}/health", timeout=2).ok, timeout=60, what="gunicorn", interval=0.2)
        conn = psycopg2.connect(database_url(server, scratch))
        conn.autocommit = True
        cur = conn.cursor()

        def finished(job_id: str) -> bool:
            cur.execute("SELECT finished_at IS NOT NULL FROM jobs_job WHERE id = %s", [job_id])
            return cur.fetchone()[0]

        def create() -> str:
            response = http.post(f"{base}/jobs", json={"type": "fibonacci", "params": {"n": 1}}, timeout=10)
            if response.status_code != 201:
                raise RuntimeError(f"POST /jobs answered {response.status_code}: {response.text[:200]}")
            return response.json()["id"]

        ids: dict[str, list[str]] = {}
        for name, broker_env in BROKERS.items():
            cluster = spawn([*manage, "qcluster"], broker_env)
            # Warm up: every worker process has run a job (connections open, code loaded).
            for _ in range(4):
                job_id = create()
                _wait(lambda job_id=job_id: finished(job_id), timeout=60, what="a warm-up job")
            time.sleep(1.0)
            ids[name] = []
            for _ in range(samples):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"benchmark took longer than {timeout}s")
                time.sleep(rng.uniform(0.05, 0.25))
                job_id = create()
                ids[name].append(job_id)
                _wait(lambda job_id=job_id: finished(job_id), timeout=30, what=f"job {job_id} to finish")
            stop(cluster)

        result: dict[str, Any] = {"samples": samples, "brokers": {}}
        for name, job_ids in ids.items():
            cur.execute(
                "SELECT extract(epoch FROM started_at - created_at) * 1000 FROM jobs_job WHERE id = ANY(%s::uuid[])",
                [job_ids],
            )
            latencies = [float(row[0]) for row in cur.fetchall()]
            result["brokers"][name] = {
                "p50_ms": round(statistics.median(latencies), 2),
                "p99_ms": round(percentile(latencies, 99), 2),
                "max_ms": round(max(latencies), 2),
                "mean_ms": round(statistics.fmean(latencies), 2),
            }
        orm_figures, listen_figures = result["brokers"].values()
        result["ratio_p50"] = round(listen_figures["p50_ms"] / orm_figures["p50_ms"], 3)
        result["ratio_p99"] = round(listen_figures["p99_ms"] / orm_figures["p99_ms"], 3)
        return result
    finally:
        for proc in processes:
            stop(proc)
        if conn is not None:
            conn.close()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100, help="jobs per broker (at least 50)")
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    result = measure(samples=args.samples, timeout=args.timeout)
    print(f"pickup latency, idle cluster, {args.samples} jobs one at a time (started_at - created_at)")
    print(f"  {'broker':<26} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, figures in result["brokers"].items():
        print(f"  {name:<26} {figures['p50_ms']:>8.1f} {figures['p99_ms']:>8.1f} {figures['max_ms']:>8.1f}")
    print(f"  ratio listen/orm: p50 {result['ratio_p50']:.3f}, p99 {result['ratio_p99']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
