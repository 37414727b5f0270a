"""Reads. Each is one query (or a few), one module per subject:

- ``jobs`` — one job, a page of jobs, a job's history;
- ``batches`` — one batch with its counts, a page of batches, a batch's history;
- ``joblog`` — a job's log lines;
- ``tokens`` — which application a token belongs to (cached per process);
- ``apps`` — an application's name by its id;
- ``stats`` — the operator's figures (monitor, /metrics, health);
- ``schedules`` — one schedule, a page of them, a schedule's history, their figures.
- ``monitors`` — what the terminal monitors add (running jobs per worker, qinfo's totals).

Writes are in ``jobs.services``. Callers use the names below (``selectors.job_get``).
"""

from .apps import app_name_get
from .batches import batch_events, batch_get, batch_get_any, batch_list, batches_active, batches_metrics
from .joblog import LogPage, job_log_page, job_log_page_any, job_log_tail
from .jobs import (
    JobFilters,
    job_events,
    job_events_latest,
    job_for_callback,
    job_get,
    job_get_any,
    job_list,
    job_list_all,
)
from .monitors import job_totals, running_by_worker
from .schedules import (
    schedule_events,
    schedule_figures,
    schedule_get,
    schedule_get_any,
    schedule_list,
    schedule_overview,
)
from .stats import database_health, metrics_snapshot, monitor_overview, platform_stats, rate_window, throughput
from .tokens import (
    app_for_token,
    app_for_token_id,
    cached_app_for_token,
    forget_cached_tokens,
    remember_token,
    token_hash,
    token_list,
)

__all__ = [
    "JobFilters",
    "LogPage",
    "app_for_token",
    "app_for_token_id",
    "app_name_get",
    "batch_events",
    "batch_get",
    "batch_get_any",
    "batch_list",
    "batches_active",
    "batches_metrics",
    "cached_app_for_token",
    "database_health",
    "forget_cached_tokens",
    "job_events",
    "job_events_latest",
    "job_for_callback",
    "job_get",
    "job_get_any",
    "job_list",
    "job_list_all",
    "job_log_page",
    "job_log_page_any",
    "job_log_tail",
    "job_totals",
    "metrics_snapshot",
    "monitor_overview",
    "platform_stats",
    "rate_window",
    "remember_token",
    "running_by_worker",
    "schedule_events",
    "schedule_figures",
    "schedule_get",
    "schedule_get_any",
    "schedule_list",
    "schedule_overview",
    "throughput",
    "token_hash",
    "token_list",
]
