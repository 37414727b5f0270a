"""The figures: one ``Row`` per line of the table, the details behind them, and their two
outputs, the printed table (with the EXPLAIN plans and py-spy summaries before it) and
the JSON report."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform as host
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.cli import Options


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
    #: Why a figure measures nothing (a side that answered errors counts them as throughput):
    #: the command then exits non-zero, after the report.
    unmeasured: list[str] = field(default_factory=list)

    def count_errors(self, scenario: str, results: dict[str, dict[str, Any]]) -> tuple[int, ...]:
        """Non-2xx answers plus socket errors of each side of a wrk comparison, in order;
        a side with any is recorded in ``unmeasured``."""
        bad = []
        for side, result in results.items():
            errors = result["non2xx"] + result["socket_errors"]
            if errors:
                self.unmeasured.append(
                    f"{scenario}: the {side} side answered {errors:,} of {result['requests']:,} requests "
                    "with an error or none, so its rate counts failures"
                )
            bad.append(errors)
        return tuple(bad)

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


def machine() -> dict[str, Any]:
    return {
        "host": host.node(),
        "cpus": os.cpu_count(),
        "system": f"{host.system()} {host.release()}",
        "python": host.python_version(),
    }


def _print_profile(name: str, profile: dict[str, Any]) -> None:
    focus = f", stacks through {profile['focus']}" if profile.get("focus") else ""
    print(f"py-spy, {name} ({profile['samples']} samples{focus}, {profile['file']}):")
    print("  self time:")
    for frame, share in profile["self"]:
        print(f"    {share:5.1f}%  {frame}")
    print("  inclusive (without the trunk every sample shares):")
    for frame, share in profile["inclusive"]:
        print(f"    {share:5.1f}%  {frame}")
    print()


def print_report(o: Options, report: Report) -> None:
    print()
    explain = report.details.get("explain", {})
    for size, plans in explain.items():
        for op, plan in plans.items():
            print(f"EXPLAIN ANALYZE, {op}, {int(size):,} rows in the table:\n{plan}\n")
    for name in ("create", "read", "execute"):
        profile = report.details.get(f"profile_{name}")
        if profile:
            _print_profile(name, profile)
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


def write_json(o: Options, report: Report) -> None:
    data = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "mode": "smoke" if o.smoke else "full",
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(o).items()},
        "rows": [vars(r) for r in report.rows],
        "unmeasured": report.unmeasured,
        "details": report.details,
    }
    o.out.parent.mkdir(parents=True, exist_ok=True)
    o.out.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"JSON report: {o.out}")
