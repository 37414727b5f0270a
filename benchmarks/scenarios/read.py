"""2 read: ``GET /jobs/{id}`` of one job under wrk, the platform against the bare
baseline view that runs the same SQL; throughput at least 0.90 of the baseline's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks import load
from benchmarks.scenarios import create, side_by_side

if TYPE_CHECKING:
    from benchmarks.run import Bench


def run(bench: Bench) -> None:
    job_id, _ = load.post_job(load.session(bench.token), bench.platform_url, create.BODY)
    side_by_side.compare(bench, name="read", scenario="2 read", path=f"/jobs/{job_id}", body=None, target=0.90)
