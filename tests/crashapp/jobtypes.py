"""Job types that misbehave on purpose, for tests only: the e2e clusters install this app
(EXTRA_INSTALLED_APPS=tests.crashapp); integration tests register single types."""

from __future__ import annotations

import os
import signal
import time

from rest_framework import serializers

from jobs.registry import JobType, registry


@registry.register
class Short(JobType):
    """Sleeps a little and returns its index."""

    name = "test_short"

    class Params(serializers.Serializer):
        index = serializers.IntegerField()
        sleep = serializers.FloatField(default=0.05)

    def run(self, ctx, params):
        time.sleep(params["sleep"])
        return {"index": params["index"]}


@registry.register
class KillsItsWorker(JobType):
    """kill -9 of its own worker process, every attempt."""

    name = "test_suicide"

    def run(self, ctx, params):
        os.kill(os.getpid(), signal.SIGKILL)


@registry.register
class RaisesUntil(JobType):
    """Raises until attempt ``succeed_on``."""

    name = "test_flaky"

    class Params(serializers.Serializer):
        succeed_on = serializers.IntegerField(min_value=1)

    def run(self, ctx, params):
        if ctx.attempt < params["succeed_on"]:
            raise RuntimeError(f"failing on attempt {ctx.attempt}")
        return {"attempt": ctx.attempt, "metadata_seen": ctx.metadata}


@registry.register
class Sleeps(JobType):
    """Sleeps without checking anything (for timeouts)."""

    name = "test_sleep"

    class Params(serializers.Serializer):
        seconds = serializers.FloatField(min_value=0)

    def run(self, ctx, params):
        time.sleep(params["seconds"])
        return {"slept": params["seconds"]}


@registry.register
class Resumable(JobType):
    """Counts ``steps`` steps of ``step_seconds``, logging and checkpointing each: a killed
    or failed attempt's successor (or a resumed re-run) continues after the last stored
    step. Raises ConnectionError on reaching ``fail_at``."""

    name = "test_resumable"

    class Params(serializers.Serializer):
        steps = serializers.IntegerField(min_value=1)
        step_seconds = serializers.FloatField(min_value=0, default=0.2)
        fail_at = serializers.IntegerField(min_value=1, required=False)

    def run(self, ctx, params):
        started_from = (ctx.checkpoint_state or {"done": 0})["done"]
        if started_from:
            ctx.log(f"resuming after step {started_from}", level="warning", started_from=started_from)
        else:
            ctx.log("starting from the first step", started_from=0)
        for step in range(started_from + 1, params["steps"] + 1):
            if step == params.get("fail_at"):
                ctx.log(f"step {step} refused", level="error", step=step)
                raise ConnectionError(f"the target refused step {step}")
            ctx.sleep(params["step_seconds"])
            ctx.log(f"step {step} done", step=step)
            ctx.checkpoint({"done": step})
            ctx.progress(100 * step / params["steps"], f"step {step} of {params['steps']}")
        return {"started_from": started_from, "attempt": ctx.attempt, "done": params["steps"]}
