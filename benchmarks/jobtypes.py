"""The benchmark's trivial job type: the platform's own cost per job, nothing else.

Registered only where ``EXTRA_INSTALLED_APPS=benchmarks`` (the benchmark's processes).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from jobs.registry import JobType, registry
from jobs.runtime.context import JobContext


@registry.register
class BenchNoop(JobType):
    """Does nothing and returns an empty result (benchmark only)."""

    name = "bench_noop"

    class Params(serializers.Serializer):
        pass

    def run(self, ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
        return {}
