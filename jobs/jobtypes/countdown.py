"""``countdown``: the brief's example of a long job; sleeps second by second."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from jobs.registry import JobType, registry
from jobs.runtime.context import JobContext


@registry.register
class Countdown(JobType):
    """Counts down the given seconds, reporting progress and logging a line every second;
    can be cancelled."""

    name = "countdown"
    timeout = 3700

    class Params(serializers.Serializer):
        seconds = serializers.IntegerField(min_value=1, max_value=3600, help_text="How long to run.")

    def run(self, ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
        seconds = params["seconds"]
        for elapsed in range(seconds):
            left = seconds - elapsed
            message = f"{left} second{'' if left == 1 else 's'} left"
            ctx.log(message, seconds_left=left)  # the walkthrough's GET /jobs/{id}/logs shows these
            ctx.progress(100.0 * elapsed / seconds, message)
            ctx.sleep(1.0)
        return {"seconds": seconds, "message": "countdown finished"}
