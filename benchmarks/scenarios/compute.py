"""6 compute: ``fibonacci`` and ``pi`` as platform jobs (``started_at`` to
``finished_at``, the median of the repeats) against the job type's ``run()`` called
directly in this process; at most 1.1 times as long."""

from __future__ import annotations

import statistics
import time
import uuid
from typing import TYPE_CHECKING, Any

from benchmarks import database, load
from benchmarks.report import Row, check, ratio

if TYPE_CHECKING:
    from benchmarks.run import Bench


def run(bench: Bench) -> None:
    o = bench.o
    http = load.session(bench.token)
    for type_name, params in (("fibonacci", {"n": o.fibonacci_n}), ("pi", {"digits": o.pi_digits})):
        label = f"{type_name} {next(iter(params))}={next(iter(params.values())):,}"
        bench.say(f"compute: {label} through the platform and directly, x{o.compute_repeats}")
        through = [_through_the_platform(bench, http, type_name, params, label) for _ in range(o.compute_repeats)]
        direct = [_direct(type_name, params) for _ in range(o.compute_repeats)]
        p, d = statistics.median(through), statistics.median(direct)
        r = ratio(p, d)
        figure = f"{label}, started->finished vs direct"
        bench.report.add(Row("6 compute", figure, p, d, r, "<= 1.1", check(r, "<=", 1.1), "ms"))


def _through_the_platform(bench: Bench, http: Any, type_name: str, params: dict[str, Any], label: str) -> float:
    job_id, _ = load.post_job(http, bench.platform_url, {"type": type_name, "params": params})
    row = database.wait_job(bench.db_url, job_id, "finished_at", timeout=600)
    if row["status"] != "succeeded":
        raise RuntimeError(f"{label} ended {row['status']}")
    return (row["finished_at"] - row["started_at"]).total_seconds() * 1000


def _direct(type_name: str, params: dict[str, Any]) -> float:
    from jobs.registry import registry
    from jobs.runtime.context import JobContext

    ctx = JobContext(job_id=uuid.uuid4(), attempt=1, job_type=type_name, metadata={}, report=lambda *_: None)
    begin = time.perf_counter()
    registry.get(type_name)().run(ctx, dict(params))
    return (time.perf_counter() - begin) * 1000
