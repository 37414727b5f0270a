"""The side-by-side benchmark: every figure of the platform next to a baseline measured
in the same run, and the ratio.

    scripts/bench [--smoke] [--out .bench/latest.json] [--seconds 10] [--rounds 2] [--jobs 5000] ...

It creates a scratch database on the server ``DATABASE_URL`` names (else the embedded
PostgreSQL), migrates it, starts two gunicorns (the platform, and the bare baseline of
``benchmarks/baseline.py``; sync, 4 workers each) and, in turn, a platform ``qcluster``
and a stock django-q2 cluster. It stops every process group it started and drops its
scratch databases at the end, also on Ctrl-C, SIGTERM or an error. README.md,
"Benchmark", explains the scenarios and how to read the table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform as host
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
PLATFORM_SETTINGS = "jobplatform.settings.production"
BASELINE_SETTINGS = "benchmarks.baseline_settings"
SCENARIOS = ("execute", "pickup", "compute", "create", "read", "growth")
CREATE_BODY = {"type": "fibonacci", "params": {"n": 1000}, "metadata": {"migration": "bench"}}

# wrk's Lua: count non-2xx answers per thread, add them up in done(), print one JSON line.
WRK_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non2xx") end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "non2xx": %%d, ' ..
    '"socket_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad,
    e.connect + e.read + e.write + e.timeout))
end
wrk.headers["Authorization"] = "Token %(token)s"
%(request)s
"""
WRK_POST = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '%s'
"""


# -- options -------------------------------------------------------------------------------
@dataclass
class Options:
    smoke: bool
    out: Path
    seconds: float
    rounds: int
    warmup: float
    connections: int
    web_workers: int
    jobs: int
    pickup_samples: int
    growth_small: int
    growth_large: int
    growth_samples: int
    fibonacci_n: int
    pi_digits: int
    compute_repeats: int
    only: tuple[str, ...]
    py_spy: Path | None
    keep_logs: bool


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few seconds per scenario, small sizes (CI)")
    parser.add_argument("--out", type=Path, default=ROOT / ".bench" / "latest.json", help="JSON report path")
    parser.add_argument("--seconds", type=float, help="wrk duration per run (default 10; smoke 2)")
    parser.add_argument("--rounds", type=int, help="alternating wrk rounds per side (default 2; smoke 1)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn sync workers, both servers")
    parser.add_argument("--jobs", type=int, help="jobs and tasks in the execute scenario (default 5000; smoke 200)")
    parser.add_argument("--pickup-samples", type=int, help="pickup latency samples (default 60; smoke 10)")
    parser.add_argument("--growth", type=str, help="SMALL,LARGE rows for growth (default 10000,1000000)")
    parser.add_argument("--only", type=str, help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--py-spy", type=Path, help="record py-spy profiles of create, read and execute here")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs (path printed)")
    args = parser.parse_args(argv)
    smoke = args.smoke
    small, large = (1_000, 5_000) if smoke else (10_000, 1_000_000)
    if args.growth:
        small, large = (int(x.replace("_", "")) for x in args.growth.split(","))
    only = tuple(s.strip() for s in args.only.split(",")) if args.only else SCENARIOS
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    return Options(
        smoke=smoke,
        out=args.out,
        seconds=args.seconds or (2.0 if smoke else 10.0),
        rounds=args.rounds or (1 if smoke else 2),
        warmup=1.0 if smoke else 2.0,
        connections=args.connections,
        web_workers=args.web_workers,
        jobs=args.jobs or (200 if smoke else 5000),
        pickup_samples=args.pickup_samples or (10 if smoke else 60),
        growth_small=small,
        growth_large=large,
        growth_samples=30 if smoke else 200,
        fibonacci_n=100_000 if smoke else 1_000_000,
        pi_digits=10_000 if smoke else 100_000,
        compute_repeats=1 if smoke else 3,
        only=only,
        py_spy=args.py_spy,
        keep_logs=args.keep_logs,
    )


# -- results -------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the table. ``met`` is shown, never asserted."""

    scenario: str
    figure: str
    platform: float | None
    baseline: float | None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    unit: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        # Scenario order (1 create ... 7 memory), whatever order they ran in.
        self.rows.sort(key=lambda r: int(r.scenario.split()[0]))


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def check(value: float | None, op: str, bound: float) -> bool | None:
    if value is None:
        return None
    return value >= bound if op == ">=" else value <= bound


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit in ("req/s", "jobs/s"):
        return f"{value:,.0f}"
    if unit == "count":
        return f"{value:.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def render_table(rows: list[Row]) -> str:
    header = ["scenario", "figure", "platform", "baseline", "ratio", "target", "met"]
    lines = [
        [
            r.scenario,
            f"{r.figure} ({r.unit})" if r.unit and r.unit != "count" else r.figure,
            fmt(r.platform, r.unit),
            fmt(r.baseline, r.unit),
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            r.target or "-",
            {True: "met", False: "NOT MET", None: "-"}[r.met],
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
    return "\n".join(out)


# -- processes -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Every process the benchmark starts, each the leader of its own process group,
    so stopping one stops what it forked (gunicorn workers, cluster workers)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}-{len(self.started)}.log", "w")
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.started.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
        """SIGTERM to the group, then SIGKILL to whatever of the group is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            # Also a group whose leader is gone may keep members: kill the group anyway.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


class MemorySampler(threading.Thread):
    """Peak RSS per labelled process tree, sampled twice a second (psutil)."""

    def __init__(self) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.roots: dict[str, tuple[int, bool]] = {}  # label -> (pid, children only)
        self.peak_mb: dict[str, float] = {}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def watch(self, label: str, pid: int, *, children_only: bool) -> None:
        with self._lock:
            self.roots[label] = (pid, children_only)

    def unwatch(self, label: str) -> None:
        self.sample()
        with self._lock:
            self.roots.pop(label, None)

    def sample(self) -> None:
        import psutil

        with self._lock:
            roots = dict(self.roots)
        for label, (pid, children_only) in roots.items():
            try:
                root = psutil.Process(pid)
                procs = root.children(recursive=True) + ([] if children_only else [root])
            except psutil.Error:
                continue
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    rss = proc.memory_info().rss / 2**20
                    self.peak_mb[label] = max(self.peak_mb.get(label, 0.0), rss)

    def run(self) -> None:
        while not self._stop_event.wait(0.5):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


# -- database ------------------------------------------------------------------------------
def server_url() -> str:
    """The server to put the scratch database on: DATABASE_URL, else the embedded one."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from jobplatform.embedded import database_url

    return database_url()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path="/" + quote(name)).geturl()


def connect(url: str, *, autocommit: bool = True) -> Any:
    """A psycopg2 connection from a URL (libpq reads %-quoted socket directories too)."""
    import psycopg2
    import psycopg2.extras

    conn = psycopg2.connect(url, cursor_factory=psycopg2.extras.RealDictCursor)
    conn.autocommit = autocommit
    return conn


def sql(url: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return [dict(r) for r in cur.fetchall()] if cur.description else []
    finally:
        conn.close()


# -- HTTP load -----------------------------------------------------------------------------
def wrk(url: str, token: str, body: dict[str, Any] | None, seconds: float, connections: int) -> dict[str, Any]:
    request = WRK_POST % json.dumps(body) if body is not None else ""
    script = WRK_LUA % {"token": token, "request": request}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        result = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(connections),
                "-d",
                f"{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                handle.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    finally:
        os.unlink(handle.name)
    line = next(x for x in result.stdout.splitlines() if x.startswith("BENCH "))
    stats = json.loads(line[len("BENCH ") :])
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    stats["p50_ms"] = stats["p50_us"] / 1000
    stats["p99_ms"] = stats["p99_us"] / 1000
    return stats


def combine_rounds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one side as one figure: requests over total time, the median round's
    p50, the worst round's p99, every error counted."""
    requests = sum(r["requests"] for r in runs)
    seconds = sum(r["duration_us"] for r in runs) / 1e6
    return {
        "rounds": runs,
        "requests": requests,
        "rps": requests / seconds,
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "non2xx": sum(r["non2xx"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
    }


def wait_http(url: str, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s")


# -- py-spy --------------------------------------------------------------------------------
class Profile:
    """``py-spy record`` in raw (collapsed stacks) format, stopped with SIGINT."""

    def __init__(self, out: Path, pid: int, *, subprocesses: bool = False, focus: str | None = None) -> None:
        self.focus = focus
        args = ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "-o", str(out)]
        if subprocesses:
            args.append("--subprocesses")
        self.out = out
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached before the load starts

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return summarize_collapsed(self.out, focus=self.focus)


def _frame_key(frame: str) -> str:
    """``func (path/file.py:12)`` → ``func (file.py)``: shares per function, not per line."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


def summarize_collapsed(path: Path, top: int = 15, focus: str | None = None) -> dict[str, Any]:
    """Self and inclusive shares of the busiest functions in a collapsed-stack file.

    ``focus`` keeps only the stacks through that function (for a cluster: its workers'
    task loop, not the sentinel or the pusher). Functions on (nearly) every stack, the
    entry trunk, are left out of the inclusive list.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if path.exists():
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_frame_key(f) for f in stack.split(";") if not f.startswith("process ")]
            if not frames or (focus is not None and focus not in frames):
                continue
            total += count
            own[frames[-1]] += count
            for key in set(frames):
                inclusive[key] += count
    share = (lambda c: round(100 * c / total, 1)) if total else (lambda c: 0.0)
    branches = [(k, share(c)) for k, c in inclusive.most_common() if c < 0.95 * total]
    return {
        "samples": total,
        "file": str(path),
        "focus": focus,
        "self": [(k, share(c)) for k, c in own.most_common(top)],
        "inclusive": branches[: top * 2],
    }


# -- the benchmark -------------------------------------------------------------------------
class Bench:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.report = Report()
        self.log_dir = Path(tempfile.mkdtemp(prefix="jobplatform-bench-"))
        self.procs = Processes(self.log_dir)
        self.memory = MemorySampler()
        self.server = server_url()
        suffix = uuid.uuid4().hex[:8]
        self.db_name = f"jobplatform_bench_{suffix}"
        self.growth_db_name = f"jobplatform_bench_growth_{suffix}"
        self.db_url = with_database(self.server, self.db_name)
        self.growth_url = with_database(self.server, self.growth_db_name)
        self.created_databases: list[str] = []
        self.secret = secrets.token_urlsafe(40)
        self.base_env = {
            **os.environ,
            "SECRET_KEY": self.secret,
            "DATABASE_URL": self.db_url,
            "EXTRA_INSTALLED_APPS": "benchmarks",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        self.platform_port = free_port()
        self.baseline_port = free_port()
        while self.baseline_port == self.platform_port:
            self.baseline_port = free_port()
        self.platform_url = f"http://127.0.0.1:{self.platform_port}"
        self.baseline_url = f"http://127.0.0.1:{self.baseline_port}"
        self.token = ""
        self.app: Any = None
        self.platform_web: subprocess.Popen | None = None
        self.baseline_web: subprocess.Popen | None = None

    def say(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def wanted(self, *names: str) -> bool:
        return any(n in self.o.only for n in names)

    # -- setup and teardown ------------------------------------------------------------------
    def admin_sql(self, statement: str) -> None:
        conn = connect(with_database(self.server, "postgres"))
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    def setup(self) -> None:
        self.say(f"scratch database {self.db_name}; logs in {self.log_dir}")
        self.admin_sql(f'CREATE DATABASE "{self.db_name}"')
        self.created_databases.append(self.db_name)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env={**self.base_env, "DJANGO_SETTINGS_MODULE": PLATFORM_SETTINGS},
            check=True,
            timeout=300,
        )
        sql(self.db_url, __import__("benchmarks.tasks", fromlist=["TABLE_SQL"]).TABLE_SQL)
        if self.wanted("growth"):
            # A copy of the freshly migrated schema (nothing is connected to it yet).
            self.admin_sql(f'CREATE DATABASE "{self.growth_db_name}" TEMPLATE "{self.db_name}"')
            self.created_databases.append(self.growth_db_name)
        # This process talks to the scratch database through the platform's own services.
        os.environ.update(
            {
                "SECRET_KEY": self.secret,
                "DATABASE_URL": self.db_url,
                "EXTRA_INSTALLED_APPS": "benchmarks",
                "DJANGO_SETTINGS_MODULE": "jobplatform.settings.test",
            }
        )
        import django

        django.setup()
        import logging

        logging.getLogger("django-q").setLevel(logging.WARNING)  # not one line per enqueued task
        from jobs import selectors, services

        self.token, _ = services.token_issue(app_name="bench")
        self.app = selectors.app_for_token(token=self.token)
        self.memory.start()

    def teardown(self) -> None:
        self.memory.stop()
        self.procs.stop_all()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        for name in self.created_databases:
            try:
                self.admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # report, and keep dropping the others
                print(f"could not drop {name}: {exc}", file=sys.stderr)
        if not self.o.keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def start_gunicorn(self, name: str, settings_module: str, port: int, health: str) -> subprocess.Popen:
        proc = self.procs.spawn(
            name,
            [
                sys.executable,
                "-m",
                "gunicorn",
                "jobplatform.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(self.o.web_workers),
                "--worker-class",
                "sync",
                "--graceful-timeout",
                "5",
            ],
            {**self.base_env, "DJANGO_SETTINGS_MODULE": settings_module},
        )
        wait_http(f"http://127.0.0.1:{port}{health}")
        self.memory.watch(f"{name} worker", proc.pid, children_only=True)
        return proc

    def start_cluster(self, name: str, settings_module: str) -> subprocess.Popen:
        proc = self.procs.spawn(
            name,
            [sys.executable, "manage.py", "qcluster"],
            {**self.base_env, "DJANGO_SETTINGS_MODULE": settings_module},
        )
        self.memory.watch(f"{name} process", proc.pid, children_only=False)
        return proc

    def stop_cluster(self, name: str, proc: subprocess.Popen) -> None:
        self.memory.unwatch(f"{name} process")
        self.procs.stop(proc)

    def gunicorn_worker(self, proc: subprocess.Popen) -> int:
        import psutil

        return psutil.Process(proc.pid).children()[0].pid

    # -- scenarios ---------------------------------------------------------------------------
    def run(self) -> None:
        started = time.monotonic()
        self.report.details["load_average_at_start"] = round(os.getloadavg()[0], 2)
        self.setup()
        self.platform_web = self.start_gunicorn("platform gunicorn", PLATFORM_SETTINGS, self.platform_port, "/health")
        self.baseline_web = self.start_gunicorn("baseline gunicorn", BASELINE_SETTINGS, self.baseline_port, "/")
        # The cluster scenarios first: the jobs the API scenarios create are never run.
        if self.wanted("execute", "pickup", "compute"):
            self.cluster_scenarios()
        if self.wanted("create", "read"):
            self.api_scenarios()
        if self.wanted("growth"):
            self.growth()
        self.memory_rows()
        self.report.details["elapsed_seconds"] = round(time.monotonic() - started, 1)

    def cluster_scenarios(self) -> None:
        from django_q.tasks import async_task

        from jobs import services

        o = self.o
        tag = {"bench": "execute"}
        if self.wanted("execute"):
            self.say(f"execute: {o.jobs} trivial jobs through the platform")
            for _ in range(o.jobs):
                services.job_create(app=self.app, type="bench_noop", params={}, metadata=tag)
        cluster = self.start_cluster("platform cluster", PLATFORM_SETTINGS)
        profile = None
        if self.o.py_spy and self.wanted("execute"):
            profile = Profile(
                self.o.py_spy / "execute.txt", cluster.pid, subprocesses=True, focus="worker (django_q/worker.py)"
            )
        try:
            if self.wanted("execute"):
                platform_rate = self.wait_rate(
                    "SELECT count(*) AS done, extract(epoch FROM max(finished_at) - min(finished_at)) AS span "
                    "FROM jobs_job WHERE type = 'bench_noop' AND status = 'succeeded' AND metadata @> %s",
                    [json.dumps(tag)],
                )
                if profile:
                    self.report.details["profile_execute"] = profile.stop()
                    profile = None
            if self.wanted("pickup"):
                self.pickup()
            if self.wanted("compute"):
                self.compute()
        finally:
            if profile:
                profile.stop()
            self.stop_cluster("platform cluster", cluster)

        if self.wanted("execute"):
            self.say(f"execute: {o.jobs} tasks through stock django-q2 (async_task, one INSERT each)")
            for n in range(o.jobs):
                async_task("benchmarks.tasks.insert_one", n)
            baseline = self.start_cluster("baseline cluster", BASELINE_SETTINGS)
            try:
                baseline_rate = self.wait_rate(
                    "SELECT count(*) AS done, extract(epoch FROM max(at) - min(at)) AS span FROM bench_baseline_write",
                    None,
                )
            finally:
                self.stop_cluster("baseline cluster", baseline)
            r = ratio(platform_rate, baseline_rate)
            self.report.add(
                Row(
                    "3 execute",
                    "trivial jobs, one qcluster",
                    platform_rate,
                    baseline_rate,
                    r,
                    ">= 0.70",
                    check(r, ">=", 0.70),
                    "jobs/s",
                )
            )

    def wait_rate(self, query: str, params: Any) -> float:
        """Jobs per second from the first finish to the last: (N - 1) / span."""
        deadline = time.monotonic() + max(300.0, self.o.jobs / 20)
        while time.monotonic() < deadline:
            row = sql(self.db_url, query, params)[0]
            if row["done"] >= self.o.jobs:
                return (self.o.jobs - 1) / float(row["span"])
            time.sleep(0.2)
        raise RuntimeError(f"only {row['done']} of {self.o.jobs} done in time")

    def post_job(self, session: Any, body: dict[str, Any]) -> tuple[str, float]:
        response = session.post(f"{self.platform_url}/jobs", json=body, timeout=10)
        answered = time.time()
        if response.status_code != 201:
            raise RuntimeError(f"POST /jobs answered {response.status_code}: {response.text[:300]}")
        return response.json()["id"], answered

    def wait_job(self, job_id: str, column: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        conn = connect(self.db_url)
        try:
            with conn.cursor() as cur:
                while time.monotonic() < deadline:
                    cur.execute(
                        f"SELECT status, started_at, finished_at FROM jobs_job WHERE id = %s AND {column} IS NOT NULL",
                        [job_id],
                    )
                    row = cur.fetchone()
                    if row:
                        return dict(row)
                    time.sleep(0.002)
        finally:
            conn.close()
        raise RuntimeError(f"job {job_id}: no {column} within {timeout}s")

    def session(self) -> Any:
        import requests

        session = requests.Session()
        session.headers["Authorization"] = f"Token {self.token}"
        return session

    def pickup(self) -> None:
        self.say(f"pickup: {self.o.pickup_samples} samples on an idle cluster")
        session = self.session()
        time.sleep(1.0)  # the cluster's workers are up and idle
        latencies = []
        for _ in range(self.o.pickup_samples):
            job_id, answered = self.post_job(session, {"type": "bench_noop", "params": {}})
            row = self.wait_job(job_id, "started_at", timeout=30)
            latencies.append((row["started_at"].timestamp() - answered) * 1000)
            time.sleep(random.uniform(0.05, 0.25))  # land anywhere in the poll cycle
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        self.report.details["pickup_ms"] = [round(x, 2) for x in latencies]
        self.report.add(
            Row("4 pickup", "201 -> started_at p50", p50, None, None, "<= 10 ms", check(p50, "<=", 10), "ms")
        )
        self.report.add(
            Row("4 pickup", "201 -> started_at p99", p99, None, None, "<= 50 ms", check(p99, "<=", 50), "ms")
        )

    def compute(self) -> None:
        from jobs.registry import registry
        from jobs.runtime.context import JobContext

        session = self.session()
        for type_name, params in (("fibonacci", {"n": self.o.fibonacci_n}), ("pi", {"digits": self.o.pi_digits})):
            label = f"{type_name} {next(iter(params))}={next(iter(params.values())):,}"
            self.say(f"compute: {label} through the platform and directly, x{self.o.compute_repeats}")
            through, direct = [], []
            for _ in range(self.o.compute_repeats):
                job_id, _ = self.post_job(session, {"type": type_name, "params": params})
                row = self.wait_job(job_id, "finished_at", timeout=600)
                if row["status"] != "succeeded":
                    raise RuntimeError(f"{label} ended {row['status']}")
                through.append((row["finished_at"] - row["started_at"]).total_seconds() * 1000)
            for _ in range(self.o.compute_repeats):
                ctx = JobContext(
                    job_id=uuid.uuid4(), attempt=1, job_type=type_name, metadata={}, report=lambda *_: None
                )
                begin = time.perf_counter()
                registry.get(type_name)().run(ctx, dict(params))
                direct.append((time.perf_counter() - begin) * 1000)
            p, d = statistics.median(through), statistics.median(direct)
            r = ratio(p, d)
            self.report.add(
                Row("6 compute", f"{label}, started->finished vs direct", p, d, r, "<= 1.1", check(r, "<=", 1.1), "ms")
            )

    def api_scenarios(self) -> None:
        assert self.platform_web and self.baseline_web
        o = self.o
        probe = self.session().post(f"{self.platform_url}/jobs", json=CREATE_BODY, timeout=10)
        probe.raise_for_status()
        job_id = probe.json()["id"]
        plans = [("create", "/jobs", CREATE_BODY, 0.85), ("read", f"/jobs/{job_id}", None, 0.90)]
        number = {"create": "1", "read": "2"}
        for name, path, body, target in plans:
            if not self.wanted(name):
                continue
            sides = {
                "platform": (self.platform_url, self.platform_web),
                "baseline": (self.baseline_url, self.baseline_web),
            }
            for base, _ in sides.values():
                wrk(base + path, self.token, body, o.warmup, o.connections)  # connections and caches warm
            # Alternate the sides round by round (P B P B ...): background load on a shared
            # machine then weighs on both alike.
            rounds: dict[str, list[dict[str, Any]]] = {"platform": [], "baseline": []}
            for number_of_round in range(1, o.rounds + 1):
                for side, (base, web) in sides.items():
                    self.say(
                        f"{name}: {side} {'POST' if body else 'GET'} {path}, wrk -c {o.connections} "
                        f"{o.seconds:g}s, round {number_of_round} of {o.rounds}"
                    )
                    profile = None
                    if o.py_spy and side == "platform" and number_of_round == 1:
                        profile = Profile(o.py_spy / f"{name}.txt", self.gunicorn_worker(web))
                    rounds[side].append(wrk(base + path, self.token, body, o.seconds, o.connections))
                    if profile:
                        self.report.details[f"profile_{name}"] = profile.stop()
            results = {side: combine_rounds(runs) for side, runs in rounds.items()}
            self.report.details[f"wrk_{name}"] = results
            p, b = results["platform"], results["baseline"]
            r = ratio(p["rps"], b["rps"])
            scenario = f"{number[name]} {name}"
            verb = "POST /jobs" if body else "GET /jobs/{id}"
            self.report.add(
                Row(
                    scenario,
                    f"{verb} throughput",
                    p["rps"],
                    b["rps"],
                    r,
                    f">= {target:.2f}",
                    check(r, ">=", target),
                    "req/s",
                )
            )
            self.report.add(
                Row(scenario, f"{verb} p50", p["p50_ms"], b["p50_ms"], ratio(p["p50_ms"], b["p50_ms"]), unit="ms")
            )
            self.report.add(
                Row(scenario, f"{verb} p99", p["p99_ms"], b["p99_ms"], ratio(p["p99_ms"], b["p99_ms"]), unit="ms")
            )
            bad_p = p["non2xx"] + p["socket_errors"]
            bad_b = b["non2xx"] + b["socket_errors"]
            self.report.add(
                Row(
                    scenario,
                    f"{verb} non-2xx + socket errors",
                    bad_p,
                    bad_b,
                    None,
                    "0",
                    bad_p == 0 and bad_b == 0,
                    "count",
                )
            )

    # -- growth ------------------------------------------------------------------------------
    def growth(self) -> None:
        from django.db import connections

        from jobs import db, selectors, services

        o = self.o
        connections.close_all()
        connections["default"].settings_dict["NAME"] = self.growth_db_name
        token, _ = services.token_issue(app_name="bench-growth")
        app = selectors.app_for_token(token=token)
        assert app is not None
        results: dict[int, dict[str, dict[str, float]]] = {}
        explains: dict[int, dict[str, str]] = {}
        for size in (o.growth_small, o.growth_large):
            present = sql(self.growth_url, "SELECT count(*) AS n FROM jobs_job")[0]["n"]
            self.say(f"growth: loading {size - present:,} rows (one INSERT ... SELECT generate_series)")
            begin = time.monotonic()
            sql(self.growth_url, GROWTH_LOAD, {"app_id": app.id, "first": present + 1, "last": size})
            sql(self.growth_url, "ANALYZE jobs_job")
            self.say(f"growth: {size:,} rows in the table (loaded in {time.monotonic() - begin:.1f}s); measuring")
            some_id = sql(
                self.growth_url,
                "SELECT id FROM jobs_job WHERE app_id = %s ORDER BY created_at LIMIT 1 OFFSET %s",
                [app.id, size // 2],
            )[0]["id"]
            meta = {"migration": "m7"}
            operations: dict[str, Callable[[], Any]] = {
                "create": lambda: services.job_create(
                    app=app, type="bench_noop", params={}, metadata={"migration": "new"}
                ),
                "read by id": lambda some_id=some_id: selectors.job_get(app=app, job_id=some_id),
                "list first page": lambda: selectors.job_list(app=app, limit=50),
                "list metadata-filtered page": lambda meta=meta: selectors.job_list(app=app, metadata=meta, limit=50),
            }
            results[size] = {}
            for op, call in operations.items():
                call()  # warm
                times = []
                for _ in range(o.growth_samples):
                    begin = time.perf_counter()
                    call()
                    times.append((time.perf_counter() - begin) * 1000)
                results[size][op] = {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}
            # job_list's parameters, as jobs.selectors.job_list passes them (no filter but metadata).
            list_params = {
                "app_id": app.id,
                "app_name": None,
                "statuses": None,
                "type": None,
                "queue": None,
                "created_after": None,
                "created_before": None,
                "before_created_at": None,
                "before_id": None,
                "limit": 50,
            }
            params_for = {
                "create": {
                    "id": uuid.uuid4(),
                    "app_id": app.id,
                    "type": "bench_noop",
                    "queue": "default",
                    "params": {},
                    "metadata": {},
                    "max_attempts": 3,
                    "timeout_seconds": 60,
                    "run_at": None,
                    "idempotency_key": None,
                    "request_hash": None,
                    "callback_url": None,
                    "max_unfinished": 0,
                    "envelope_key": "jobplatform",
                    "envelope_payload": "x",
                },
                "read by id": {"id": some_id, "app_id": app.id},
                "list first page": {**list_params, "metadata": None},
                "list metadata-filtered page": {**list_params, "metadata": db.as_json(meta)},
            }
            names = {
                "create": "job_create",
                "read by id": "job_get",
                "list first page": "job_list",
                "list metadata-filtered page": "job_list",
            }
            explains[size] = {op: self.explain(db.queries[names[op]], db.adapt(params_for[op])) for op in operations}
        self.report.details["growth"] = {str(k): v for k, v in results.items()}
        self.report.details["explain"] = {str(k): v for k, v in explains.items()}
        small, large = results[o.growth_small], results[o.growth_large]
        for op in small:
            r = ratio(large[op]["p50_ms"], small[op]["p50_ms"])
            self.report.add(
                Row(
                    "5 growth",
                    f"{op} p50, {o.growth_large:,} vs {o.growth_small:,} rows",
                    large[op]["p50_ms"],
                    small[op]["p50_ms"],
                    r,
                    "<= 1.3",
                    check(r, "<=", 1.3),
                    "ms",
                )
            )

    def explain(self, query: str, params: dict[str, Any]) -> str:
        """EXPLAIN ANALYZE inside a transaction that is rolled back (creates leave nothing)."""
        conn = connect(self.growth_url, autocommit=False)
        try:
            with conn.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params)
                return "\n".join(r["QUERY PLAN"] for r in cur.fetchall())
        finally:
            conn.rollback()
            conn.close()

    def memory_rows(self) -> None:
        self.memory.sample()
        peaks = self.memory.peak_mb
        self.report.details["peak_rss_mb"] = {k: round(v, 1) for k, v in peaks.items()}
        for what, p_label, b_label in (
            ("gunicorn worker", "platform gunicorn worker", "baseline gunicorn worker"),
            ("cluster process", "platform cluster process", "baseline cluster process"),
        ):
            p, b = peaks.get(p_label), peaks.get(b_label)
            if p is None and b is None:
                continue
            self.report.add(
                Row("7 memory", f"peak RSS of a {what}", p, b, ratio(p, b), "<= 120 MB", check(p, "<=", 120), "MB")
            )


# All the rows in one statement; created_at spreads them over the past, newest last.
GROWTH_LOAD = """
INSERT INTO jobs_job (id, app_id, type, params, metadata, status, attempts, max_attempts, timeout_seconds,
                      result, created_at, started_at, finished_at, updated_at)
SELECT gen_random_uuid(), %(app_id)s, 'bench_noop', '{}'::jsonb,
       jsonb_build_object('migration', 'm' || (g %% 100), 'row', g),
       'succeeded', 1, 3, 60, '{}'::jsonb,
       now() - make_interval(secs => 10000000 - g), now() - make_interval(secs => 10000000 - g),
       now() - make_interval(secs => 10000000 - g), now() - make_interval(secs => 10000000 - g)
FROM generate_series(%(first)s::int, %(last)s::int) AS g
"""


def machine() -> dict[str, Any]:
    return {
        "host": host.node(),
        "cpus": os.cpu_count(),
        "system": f"{host.system()} {host.release()}",
        "python": host.python_version(),
    }


def print_report(bench: Bench) -> None:
    o, report = bench.o, bench.report
    print()
    explain = report.details.get("explain", {})
    for size, plans in explain.items():
        for op, plan in plans.items():
            print(f"EXPLAIN ANALYZE, {op}, {int(size):,} rows in the table:\n{plan}\n")
    for name in ("create", "read", "execute"):
        profile = report.details.get(f"profile_{name}")
        if profile:
            focus = f", stacks through {profile['focus']}" if profile.get("focus") else ""
            print(f"py-spy, {name} ({profile['samples']} samples{focus}, {profile['file']}):")
            print("  self time:")
            for frame, share in profile["self"]:
                print(f"    {share:5.1f}%  {frame}")
            print("  inclusive (without the trunk every sample shares):")
            for frame, share in profile["inclusive"]:
                print(f"    {share:5.1f}%  {frame}")
            print()
    mode = "smoke" if o.smoke else "full"
    print(
        f"jobplatform benchmark ({mode}), {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPUs (load average {report.details.get('load_average_at_start', '?')} at start), "
        f"gunicorn sync x{o.web_workers}, wrk -c {o.connections}, {o.rounds} x {o.seconds:g}s per side, "
        f"{o.jobs} jobs, elapsed {report.details.get('elapsed_seconds', '?')} s"
    )
    print(render_table(report.rows))
    print("(targets are shown, never asserted; growth: platform = large table, baseline = small table)")
    if o.py_spy:
        print("(py-spy sampled the platform's create, read and execute runs: those figures are lower than without it)")


def write_json(bench: Bench) -> None:
    o = bench.o
    data = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "mode": "smoke" if o.smoke else "full",
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(o).items()},
        "rows": [vars(r) for r in bench.report.rows],
        "details": bench.report.details,
    }
    o.out.parent.mkdir(parents=True, exist_ok=True)
    o.out.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"JSON report: {o.out}")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so the cleanup runs."""
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    if not shutil.which("wrk") and any(s in options.only for s in ("create", "read")):
        sys.exit("wrk is not installed: apt-get install wrk")
    if options.py_spy:
        if not shutil.which("py-spy"):
            sys.exit("py-spy is not installed: pip install -r requirements/dev.txt")
        options.py_spy.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    bench = Bench(options)
    with interrupts_raise():
        try:
            bench.run()
        except KeyboardInterrupt:
            print("\ninterrupted: stopping everything and dropping the scratch databases", file=sys.stderr)
            raise SystemExit(130) from None
        finally:
            bench.teardown()
    print_report(bench)
    write_json(bench)
