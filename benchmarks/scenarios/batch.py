"""8 batch: jobs created per second through ``POST /batches`` (``batch_size`` jobs per
request) against one by one through ``POST /jobs``, both on the platform's gunicorn under
wrk with the same connections, the same job body (the create scenario's) and alternating
rounds; the batch path at least 5 times the single one. Each job costs the same rows either
way (the job, its envelope, its two events): what a batch saves is the per-request work
(HTTP, authentication, one statement and one commit per job)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmarks import load
from benchmarks.report import Row, check, ratio
from benchmarks.scenarios.create import BODY

if TYPE_CHECKING:
    from benchmarks.run import Bench

TARGET = 5.0


def run(bench: Bench) -> None:
    o = bench.o
    batch = {"jobs": [BODY] * o.batch_size, "metadata": {"migration": "bench"}}
    sides: dict[str, tuple[str, dict[str, Any], int]] = {
        "batches": ("/batches", batch, o.batch_size),
        "one by one": ("/jobs", BODY, 1),
    }
    for path, body, _ in sides.values():
        load.wrk(bench.platform_url + path, bench.token, body, o.warmup, o.connections)
    rounds: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for number in range(1, o.rounds + 1):
        for side, (path, body, _) in sides.items():
            bench.say(
                f"batch: {side}, POST {path}, wrk -c {o.connections} {o.seconds:g}s, round {number} of {o.rounds}"
            )
            rounds[side].append(load.wrk(bench.platform_url + path, bench.token, body, o.seconds, o.connections))
    results = {side: load.combine_rounds(runs) for side, runs in rounds.items()}
    jobs_per_second = {side: results[side]["rps"] * per_request for side, (_, _, per_request) in sides.items()}
    bench.report.details["wrk_batch"] = {"batch_size": o.batch_size, **results, "jobs_per_second": jobs_per_second}
    r = ratio(jobs_per_second["batches"], jobs_per_second["one by one"])
    bench.report.add(
        Row(
            "8 batch",
            f"jobs created, POST /batches of {o.batch_size} vs POST /jobs",
            jobs_per_second["batches"],
            jobs_per_second["one by one"],
            r,
            f">= {TARGET:.2f}",
            check(r, ">=", TARGET),
            "jobs/s",
        )
    )
    bad_p, bad_b = bench.report.count_errors("8 batch", {side: results[side] for side in ("batches", "one by one")})
    met = bad_p == 0 and bad_b == 0
    bench.report.add(Row("8 batch", "non-2xx + socket errors", bad_p, bad_b, None, "0", met, "count"))
