"""Writes. Every change to the platform's records goes through here, one module per flow:

- ``validation`` — checking a create request (every field, every fault named at once);
- ``lifecycle`` — create, claim, heartbeat, progress, succeed, fail (retry), cancel;
- ``batches`` — many jobs created in one statement, followed and cancelled as one;
- ``idempotency`` — the ``Idempotency-Key`` rule of every create (a job, a batch);
- ``checkpoints``, ``joblog`` and ``rerun`` — a running attempt's checkpoint and log
  lines; a finished job run again;
- ``recovery`` — rescue, redelivery and promotion (the maintenance transitions);
- ``callbacks`` — completion callbacks: the allowed URLs, the outbox, the signature;
- ``tokens`` — applications, their tokens, limits and callback secrets;
- ``sessions`` and ``ratelimit`` — the browsable API's sessions, the rate counters;
- ``database`` — the platform's database made when its server lacks it (before migrate);
- ``schedules`` — create, change and fire schedules (``timing``: their fire times).

Reads are in ``jobs.selectors``. Callers use the names below (``services.job_create``).
"""

from .backoff import backoff_delay
from .batches import BATCH_FIELDS, BatchRequest, batch_cancel, batch_create, batch_request_validate
from .callbacks import callback_delivered, callback_failed, callbacks_take
from .checkpoints import CheckpointSaved, checkpoint_check, job_checkpoint
from .joblog import job_log_append, log_line
from .lifecycle import (
    job_cancel,
    job_cancelled,
    job_claim,
    job_create,
    job_defer,
    job_fail,
    job_heartbeat,
    job_progress,
    job_succeed,
)
from .recovery import jobs_promote_due, jobs_redeliver_lost, jobs_rescue_expired
from .rerun import RERUN_FIELDS, RERUN_OVERRIDES, job_rerun
from .schedules import CHANGE_FIELDS, SCHEDULE_FIELDS, schedule_change, schedule_create, schedules_fire_due
from .tokens import app_rotate_callback_secret, app_set_max_running, token_issue, token_revoke, token_scopes
from .validation import JOB_FIELDS, JobRequest, job_request_validate, parse_instant

__all__ = [
    "BATCH_FIELDS",
    "CHANGE_FIELDS",
    "JOB_FIELDS",
    "RERUN_FIELDS",
    "RERUN_OVERRIDES",
    "SCHEDULE_FIELDS",
    "BatchRequest",
    "CheckpointSaved",
    "JobRequest",
    "app_rotate_callback_secret",
    "app_set_max_running",
    "backoff_delay",
    "batch_cancel",
    "batch_create",
    "batch_request_validate",
    "callback_delivered",
    "callback_failed",
    "callbacks_take",
    "checkpoint_check",
    "job_cancel",
    "job_cancelled",
    "job_checkpoint",
    "job_claim",
    "job_create",
    "job_defer",
    "job_fail",
    "job_heartbeat",
    "job_log_append",
    "job_progress",
    "job_request_validate",
    "job_rerun",
    "job_succeed",
    "jobs_promote_due",
    "jobs_redeliver_lost",
    "jobs_rescue_expired",
    "log_line",
    "parse_instant",
    "schedule_change",
    "schedule_create",
    "schedules_fire_due",
    "token_issue",
    "token_revoke",
    "token_scopes",
]
