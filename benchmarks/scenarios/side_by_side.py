"""The HTTP comparison the create and read scenarios share: both servers warmed, then
wrk rounds alternating platform and baseline, and four rows (throughput with its target,
p50, p99, errors)."""

from __future__ import annotations

import contextlib
import subprocess
from typing import TYPE_CHECKING, Any

from benchmarks import load, profile
from benchmarks.processes import gunicorn_worker
from benchmarks.report import Report, Row, check, ratio

if TYPE_CHECKING:
    from benchmarks.run import Bench


def compare(bench: Bench, *, name: str, scenario: str, path: str, body: dict[str, Any] | None, target: float) -> None:
    """``path`` on both servers under wrk (a POST of ``body``, else a GET); the platform's
    throughput should be at least ``target`` times the baseline's."""
    o = bench.o
    assert bench.platform_web and bench.baseline_web
    sides = {
        "platform": (bench.platform_url, bench.platform_web),
        "baseline": (bench.baseline_url, bench.baseline_web),
    }
    for base, _ in sides.values():
        load.wrk(base + path, bench.token, body, o.warmup, o.connections)  # connections and caches warm
    # Alternate the sides round by round (P B P B ...): background load on a shared
    # machine then weighs on both alike.
    rounds: dict[str, list[dict[str, Any]]] = {"platform": [], "baseline": []}
    for number in range(1, o.rounds + 1):
        for side, (base, web) in sides.items():
            bench.say(
                f"{name}: {side} {'POST' if body else 'GET'} {path}, wrk -c {o.connections} "
                f"{o.seconds:g}s, round {number} of {o.rounds}"
            )
            with _profiled(bench, name, web, first_platform_round=side == "platform" and number == 1):
                rounds[side].append(load.wrk(base + path, bench.token, body, o.seconds, o.connections))
    results = {side: load.combine_rounds(runs) for side, runs in rounds.items()}
    bench.report.details[f"wrk_{name}"] = results
    add_rows(bench.report, scenario, "POST /jobs" if body else "GET /jobs/{id}", results, target)


def _profiled(
    bench: Bench, name: str, web: subprocess.Popen, *, first_platform_round: bool
) -> contextlib.AbstractContextManager[None]:
    """py-spy on one platform worker in the first round, when asked."""
    if bench.o.py_spy is None or not first_platform_round:
        return contextlib.nullcontext()
    return profile.recorded(bench.o.py_spy, name, gunicorn_worker(web), bench.report.details)


def add_rows(report: Report, scenario: str, verb: str, results: dict[str, dict[str, Any]], target: float) -> None:
    p, b = results["platform"], results["baseline"]
    r = ratio(p["rps"], b["rps"])
    throughput = f">= {target:.2f}"
    report.add(Row(scenario, f"{verb} throughput", p["rps"], b["rps"], r, throughput, check(r, ">=", target), "req/s"))
    report.add(Row(scenario, f"{verb} p50", p["p50_ms"], b["p50_ms"], ratio(p["p50_ms"], b["p50_ms"]), unit="ms"))
    report.add(Row(scenario, f"{verb} p99", p["p99_ms"], b["p99_ms"], ratio(p["p99_ms"], b["p99_ms"]), unit="ms"))
    bad_p, bad_b = report.count_errors(scenario, results)
    met = bad_p == 0 and bad_b == 0
    report.add(Row(scenario, f"{verb} non-2xx + socket errors", bad_p, bad_b, None, "0", met, "count"))
