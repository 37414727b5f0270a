"""The one way a job reaches a worker: a django-q2 envelope for ``execute_job(job_id)``.

The envelope is django-q2's own signed task package, written into its database
broker table (``django_q_ormq``) by the same SQL statement that changes the job
(``job_create``, ``job_retry``, ``job_rescue_requeue``, ``job_redeliver``, each through
the one ``_envelope_insert`` fragment of ``jobs/sql/jobs_write.sql``): the job row and its
envelope commit together or not at all. The job's ``run_at`` becomes the envelope's
``lock`` time, which the broker honours: no cluster takes it before then. Plugin code
paths never travel through the queue, only a job id.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_q.conf import Conf
from django_q.humanhash import humanize
from django_q.signals import pre_enqueue
from django_q.signing import SignedPackage

EXECUTE_JOB = "jobs.runtime.worker.execute_job"


def envelope_payload(job_id: uuid.UUID, *, timeout: int) -> str:
    """django-q2's signed task package for one delivery of a job."""
    task_id = uuid.uuid4().hex
    task = {
        "id": task_id,
        "name": humanize(task_id),
        "func": EXECUTE_JOB,
        "args": (str(job_id),),
        "kwargs": {},
        # django-q2 stops the run (SIGALRM) after this many seconds.
        "timeout": int(timeout),
        # Every delivery is acknowledged: the job row, not the queue, tracks failure.
        "ack_failure": True,
        "group": "jobs",
        "started": timezone.now(),
    }
    pre_enqueue.send(sender="django_q", task=task)
    return SignedPackage.dumps(task)


#: The queue a job waits on unless it names another.
DEFAULT_QUEUE = "default"


def queue_names() -> list[str]:
    """The configured queues (``JOBS_QUEUES``); ``default`` always exists."""
    configured = getattr(settings, "JOBS_QUEUES", None) or []
    return [DEFAULT_QUEUE, *[name for name in configured if name != DEFAULT_QUEUE]]


def queue_key(queue: str) -> str:
    """The django-q2 cluster name that serves ``queue``: clusters only take envelopes
    whose key is their own name. ``default`` is the configured cluster name itself, so a
    plain ``qcluster`` serves it; ``qcluster --queue high`` serves ``<name>.high``."""
    base = settings.Q_CLUSTER.get("name", Conf.PREFIX)
    return base if queue == DEFAULT_QUEUE else f"{base}.{queue}"


def envelope(job_id: uuid.UUID, *, timeout: int, queue: str = DEFAULT_QUEUE) -> dict[str, Any]:
    """The ``envelope_*`` parameters of the SQL that writes a delivery with a job change."""
    return {"envelope_key": queue_key(queue), "envelope_payload": envelope_payload(job_id, timeout=timeout)}
