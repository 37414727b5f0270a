"""Promotion: ``scheduled`` jobs whose ``run_at`` has come are shown as ``queued``.

Their envelope became visible to clusters at ``run_at`` by itself (the envelope's lock
time); this only changes what clients read, and records a ``queued`` event.

Transition: ``jobs.services.recovery.jobs_promote_due``; query ``job_promote_due``.
"""

from __future__ import annotations

from jobs.services import recovery

NAME = "promoted"


def run(*, batch: int) -> int:
    """Promote up to ``batch`` due jobs; returns how many."""
    return recovery.jobs_promote_due(limit=batch)
