"""The crash-test app's one hook outside its job types: with ``CRASHAPP_SCHEDULE_PAUSE``
set (seconds), every schedule fire of this process waits that long after its last write
and before its commit, so a test can kill the cluster mid-pass with certainty
(tests/e2e/test_schedules.py)."""

from __future__ import annotations

import os
import time
from typing import Any

from django.apps import AppConfig


class CrashAppConfig(AppConfig):
    name = "tests.crashapp"

    def ready(self) -> None:
        pause = float(os.environ.get("CRASHAPP_SCHEDULE_PAUSE") or 0)
        if pause > 0:
            pause_schedule_fires(pause)


def pause_schedule_fires(seconds: float) -> None:
    """Make each schedule fire hold its transaction ``seconds`` more, every write made."""
    from jobs.services import schedules

    fire = schedules._fire

    def slow_fire(schedule: Any, **kwargs: Any) -> Any:
        jobs = fire(schedule, **kwargs)
        time.sleep(seconds)  # inside the pass's transaction: nothing of this fire is committed yet
        return jobs

    schedules._fire = slow_fire
