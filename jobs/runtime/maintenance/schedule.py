"""Schedules: each due fire time of an active schedule becomes exactly one job.

Every worker process of every cluster runs this in its maintenance pass; they share the
work through ``FOR UPDATE SKIP LOCKED`` (a schedule one pass holds, another skips). A due
schedule's fire times are computed from its definition against the database's ``now()``;
their jobs are inserted by the create statement in the same transaction as the
schedule's advance, and the unique index ``jobs_job_schedule_fire`` refuses a second job
for a (schedule, fire time). A pass killed midway commits nothing: the schedule is still
due, and the next pass fires it. Fire times first reached more than
``JOBS_SCHEDULE_MISFIRE_GRACE`` seconds late (every cluster was down) follow the
schedule's ``catch_up``, recorded in its history.

Transition: ``jobs.services.schedules.schedules_fire_due``; queries ``schedule_take_due``,
``job_create`` and ``schedule_advance``. Proved by ``tests/integration/test_schedules.py``
and ``tests/e2e/test_schedules.py``.
"""

from __future__ import annotations

from jobs.services import schedules

NAME = "fired"


def run(*, batch: int) -> int:
    """Fire up to ``batch`` due schedules; returns how many jobs they created."""
    return schedules.schedules_fire_due(limit=batch)
