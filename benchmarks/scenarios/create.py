"""1 create: ``POST /jobs`` under wrk, the platform against the bare baseline view that
runs the same SQL (``benchmarks/baseline.py``); throughput at least 0.85 of the
baseline's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.scenarios import side_by_side

if TYPE_CHECKING:
    from benchmarks.run import Bench

#: The job every create posts (also the job the read scenario reads).
BODY = {"type": "fibonacci", "params": {"n": 1000}, "metadata": {"migration": "bench"}}


def run(bench: Bench) -> None:
    side_by_side.compare(bench, name="create", scenario="1 create", path="/jobs", body=BODY, target=0.85)
