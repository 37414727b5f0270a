"""3 execute: N trivial ``bench_noop`` jobs, created before one platform ``qcluster``
starts, against N stock django-q2 tasks (``benchmarks.tasks.insert_one``, one durable
INSERT each) run by a stock cluster with the same settings and broker. jobs/s from the
first finish to the last; the platform should reach at least 0.70 of the baseline.

The platform cluster is shared with pickup and compute (``Bench.cluster_scenarios``), so
this scenario comes in three steps: queue the jobs, time the platform while its cluster
runs, then queue and time the baseline."""

from __future__ import annotations

import json
import subprocess
import time
from typing import TYPE_CHECKING, Any

from benchmarks import database, profile
from benchmarks.processes import BASELINE_SETTINGS
from benchmarks.report import Row, check, ratio

if TYPE_CHECKING:
    from benchmarks.run import Bench

#: The metadata of this scenario's jobs (pickup and compute create others on the same cluster).
TAG = {"bench": "execute"}
PLATFORM_DONE = (
    "SELECT count(*) AS done, extract(epoch FROM max(finished_at) - min(finished_at)) AS span "
    "FROM jobs_job WHERE type = 'bench_noop' AND status = 'succeeded' AND metadata @> %s"
)
BASELINE_DONE = "SELECT count(*) AS done, extract(epoch FROM max(at) - min(at)) AS span FROM bench_baseline_write"
TARGET = 0.70


def queue_platform_jobs(bench: Bench) -> None:
    from jobs import services

    bench.say(f"execute: {bench.o.jobs} trivial jobs through the platform")
    for _ in range(bench.o.jobs):
        services.job_create(app=bench.app, type="bench_noop", params={}, metadata=TAG)


def platform_rate(bench: Bench, cluster: subprocess.Popen) -> float:
    """The platform's rate, its cluster just started (py-spy on all of it, when asked)."""
    if bench.o.py_spy is None:
        return _wait_rate(bench, PLATFORM_DONE, [json.dumps(TAG)])
    focus = "worker (django_q/worker.py)"
    with profile.recorded(bench.o.py_spy, "execute", cluster.pid, bench.report.details, subprocesses=True, focus=focus):
        return _wait_rate(bench, PLATFORM_DONE, [json.dumps(TAG)])


def compare_with_baseline(bench: Bench, platform_rate: float) -> None:
    """Queue and time the baseline's tasks (the platform cluster is stopped), add the row."""
    from django_q.tasks import async_task

    jobs = bench.o.jobs
    bench.say(f"execute: {jobs} tasks through stock django-q2 (async_task, one INSERT each)")
    for n in range(jobs):
        async_task("benchmarks.tasks.insert_one", n)
    baseline = bench.procs.cluster("baseline cluster", BASELINE_SETTINGS)
    try:
        baseline_rate = _wait_rate(bench, BASELINE_DONE, None)
    finally:
        bench.procs.stop_cluster("baseline cluster", baseline)
    r = ratio(platform_rate, baseline_rate)
    figure = "trivial jobs, one qcluster"
    bench.report.add(
        Row("3 execute", figure, platform_rate, baseline_rate, r, f">= {TARGET:.2f}", check(r, ">=", TARGET), "jobs/s")
    )


def _wait_rate(bench: Bench, query: str, params: Any) -> float:
    """Jobs per second from the first finish to the last: (N - 1) / span."""
    jobs = bench.o.jobs
    deadline = time.monotonic() + max(300.0, jobs / 20)
    while time.monotonic() < deadline:
        row = database.sql(bench.db_url, query, params)[0]
        if row["done"] >= jobs:
            return (jobs - 1) / float(row["span"])
        time.sleep(0.2)
    raise RuntimeError(f"only {row['done']} of {jobs} done in time")
