"""4 pickup: on an idle platform cluster, the time from a create's 201 answer to the
job's ``started_at``, one job at a time at random moments; p50 at most 10 ms, p99 at
most 50 ms. No baseline. (``benchmarks/pickup.py`` compares the two brokers instead.)"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from benchmarks import database, load
from benchmarks.report import Row, check, percentile

if TYPE_CHECKING:
    from benchmarks.run import Bench


def run(bench: Bench) -> None:
    bench.say(f"pickup: {bench.o.pickup_samples} samples on an idle cluster")
    http = load.session(bench.token)
    time.sleep(1.0)  # the cluster's workers are up and idle
    latencies = []
    for _ in range(bench.o.pickup_samples):
        job_id, answered = load.post_job(http, bench.platform_url, {"type": "bench_noop", "params": {}})
        row = database.wait_job(bench.db_url, job_id, "started_at", timeout=30)
        latencies.append((row["started_at"].timestamp() - answered) * 1000)
        time.sleep(random.uniform(0.05, 0.25))  # land anywhere in the poll cycle
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    bench.report.details["pickup_ms"] = [round(x, 2) for x in latencies]
    bench.report.add(Row("4 pickup", "201 -> started_at p50", p50, None, None, "<= 10 ms", check(p50, "<=", 10), "ms"))
    bench.report.add(Row("4 pickup", "201 -> started_at p99", p99, None, None, "<= 50 ms", check(p99, "<=", 50), "ms"))
