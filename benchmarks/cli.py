"""The side-by-side benchmark: every figure of the platform next to a baseline measured
in the same run, and the ratio.

    scripts/bench [--smoke] [--out .bench/latest.json] [--seconds 10] [--rounds 2] [--jobs 5000] ...

It creates a scratch database on the server ``DATABASE_URL`` names (else the embedded
PostgreSQL), migrates it, starts two gunicorns (the platform, and the bare baseline of
``benchmarks/baseline.py``; sync, 4 workers each) and, in turn, a platform ``qcluster``
and a stock django-q2 cluster. It stops every process group it started and drops its
scratch databases at the end, also on Ctrl-C, SIGTERM or an error. docs/benchmark.md
explains the scenarios and how to read the table.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import ROOT, report
from benchmarks.run import Bench

SCENARIOS = ("execute", "pickup", "compute", "create", "read", "growth", "batch")


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
    batch_size: int
    only: tuple[str, ...]
    py_spy: Path | None
    keep_logs: bool


def parser() -> argparse.ArgumentParser:
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
    return parser


def parse_options(argv: list[str] | None = None) -> Options:
    arguments = parser()
    args = arguments.parse_args(argv)
    smoke = args.smoke
    small, large = (1_000, 5_000) if smoke else (10_000, 1_000_000)
    if args.growth:
        small, large = (int(x.replace("_", "")) for x in args.growth.split(","))
    only = tuple(s.strip() for s in args.only.split(",")) if args.only else SCENARIOS
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        arguments.error(f"unknown scenario(s) {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
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
        batch_size=200 if smoke else 1000,
        only=only,
        py_spy=args.py_spy,
        keep_logs=args.keep_logs,
    )


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
    if not shutil.which("wrk") and any(s in options.only for s in ("create", "read", "batch")):
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
    report.print_report(options, bench.report)
    report.write_json(options, bench.report)
    if bench.report.unmeasured:
        sys.exit("could not measure:\n  " + "\n  ".join(bench.report.unmeasured))
