"""Rescue: a ``running`` job whose lease ran out lost its worker (killed, crashed, or hung
past its timeout: the heartbeat extends the lease every ``JOBS_HEARTBEAT_INTERVAL`` while
the worker lives).

It goes back to the queue with a new envelope (event ``rescued``), or ends ``failed``
(``WorkerLost``) when its attempts are spent, or ``cancelled`` when its cancellation was
asked. The attempt that lost the job can no longer write: every worker write is fenced by
the attempt number.

Transition: ``jobs.services.recovery.jobs_rescue_expired``; queries ``job_find_expired``,
``job_rescue_requeue`` and ``job_rescue_fail`` (``jobs/sql/jobs_write.sql``). Proved by
``tests/e2e/test_crashes.py`` and ``tests/integration/test_maintenance.py``.
"""

from __future__ import annotations

from jobs.services import recovery

NAME = "rescued"


def run(*, batch: int) -> int:
    """Rescue up to ``batch`` jobs whose lease expired; returns how many."""
    return recovery.jobs_rescue_expired(limit=batch)
