"""Redelivery: a waiting job whose delivery was lost gets a new envelope.

An envelope can vanish (django-q2 deletes one whose signature fails; an operator empties
the broker table), or be taken by a cluster that dies before starting the job: django-q2
hands a taken envelope out again only ``Q_CLUSTER["retry"]`` seconds later. A job
``queued`` (or due) for ``JOBS_REDELIVER_AFTER`` seconds with no envelope a cluster could
take gets a new one (event ``redelivered``).

Transition: ``jobs.services.recovery.jobs_redeliver_lost``; queries
``job_find_undelivered`` and ``job_redeliver``. Proved by
``tests/integration/test_maintenance.py`` and ``test_deleted_envelope_is_delivered_again``.
"""

from __future__ import annotations

from jobs.conf import q_cluster_retry
from jobs.services import recovery

NAME = "redelivered"


def run(*, batch: int) -> int:
    """Redeliver up to ``batch`` jobs whose envelope was lost; returns how many."""
    return recovery.jobs_redeliver_lost(limit=batch, retry=q_cluster_retry())
