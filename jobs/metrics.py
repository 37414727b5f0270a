"""Prometheus metrics: job figures read from PostgreSQL at scrape time, HTTP figures per
process, combined across gunicorn workers.

Two kinds of figures, two sources:

- **Jobs** (:class:`JobsCollector`), **schedules** (:class:`SchedulesCollector`) and
  **batches** (:class:`BatchesCollector`): every number comes from the database when
  ``/metrics`` is scraped, so it is the same, complete figure whichever web process or
  host answers, and nothing is lost when a process restarts. Counters are counts of
  records that are never deleted (jobs, their attempts, their retry and rescue events,
  finished jobs, schedule history), so they only grow.
- **HTTP** (:data:`HTTP_REQUESTS`, …): counted in each web process as it serves. Under
  gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` (set by ``docker/gunicorn.conf.py``) makes
  prometheus-client keep them in one memory-mapped file per process, and
  :func:`exposition` sums the files of every worker, live or dead, of this gunicorn.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from . import selectors
from .conf import settings
from .domain import TERMINAL, BatchState, ScheduleState, Status
from .queue import queue_names
from .registry import registry as job_types

PREFIX = "jobplatform"

# No ``*_created`` series: multiprocess mode cannot have them, so a single process has none either.
disable_created_metrics()

#: Upper bounds (seconds) of the job duration histograms' buckets.
RUN_SECONDS_BUCKETS: tuple[float, ...] = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200)
WAIT_SECONDS_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 900, 3600)
HTTP_SECONDS_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# -- per-process HTTP figures --------------------------------------------------------------
#: Registered here, not in prometheus-client's global registry: outside gunicorn (tests,
#: ``manage.py``) /metrics shows these; under gunicorn it reads every worker's files.
HTTP_REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    f"{PREFIX}_http_requests",
    "HTTP requests answered, by route (the URL pattern's name), method and status.",
    ["route", "method", "status"],
    registry=HTTP_REGISTRY,
)
HTTP_DURATION = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time to answer an HTTP request, by route and method.",
    ["route", "method"],
    buckets=HTTP_SECONDS_BUCKETS,
    registry=HTTP_REGISTRY,
)
AUTH_FAILURES = Counter(
    f"{PREFIX}_http_auth_failures",
    "Requests refused with 401 (missing, unknown or revoked token), by route.",
    ["route"],
    registry=HTTP_REGISTRY,
)


def observe_request(*, route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_DURATION.labels(route, method).observe(seconds)
    if status == 401:
        AUTH_FAILURES.labels(route).inc()


# -- job figures from PostgreSQL ---------------------------------------------------------------
def _cumulative(
    rows: Iterable[dict[str, Any]], kind: str, bounds: tuple[float, ...]
) -> dict[str, tuple[list[float], float]]:
    """``{type: (cumulative counts per bound and +Inf, sum)}`` for ``kind`` (``run`` or
    ``wait``) from rows where ``<kind>_k`` is how many bounds are >= the duration (so the
    row's jobs count in the k largest buckets; NULL: no such duration)."""
    out: dict[str, tuple[list[float], float]] = {}
    n = len(bounds)
    for row in rows:
        if row[f"{kind}_k"] is None:
            continue
        counts, total = out.get(row["type"], ([0.0] * (n + 1), 0.0))
        for index in range(n - int(row[f"{kind}_k"]), n + 1):  # the k largest bounds, and +Inf
            counts[index] += row["jobs"]
        out[row["type"]] = (counts, total + float(row[f"{kind}_seconds"]))
    return out


def _histogram(name: str, doc: str, data: dict[str, tuple[list[float], float]], bounds: tuple[float, ...]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=["type"])
    for job_type, (counts, total) in sorted(data.items()):
        buckets = [(_le(b), c) for b, c in zip(bounds, counts, strict=False)] + [("+Inf", counts[-1])]
        family.add_metric([job_type], buckets, total)
    return family


def _le(bound: float) -> str:
    return repr(float(bound))


class JobsCollector(Collector):
    """Job figures, read from the database at each scrape (four queries)."""

    def collect(self) -> Iterator[Metric]:
        snapshot = selectors.metrics_snapshot(run_bounds=RUN_SECONDS_BUCKETS, wait_bounds=WAIT_SECONDS_BUCKETS)
        counts = snapshot["by_type_status"]
        types = sorted({row["type"] for row in counts} | set(job_types.names()))

        jobs = GaugeMetricFamily(f"{PREFIX}_jobs", "Jobs in each status now, by type.", labels=["type", "status"])
        table = {(row["type"], row["status"]): row for row in counts}
        for job_type in types:
            for status in Status:
                row = table.get((job_type, status.value))
                jobs.add_metric([job_type, status.value], row["jobs"] if row else 0)
        yield jobs

        created = CounterMetricFamily(f"{PREFIX}_jobs_created", "Jobs created, by type.", labels=["type"])
        started = CounterMetricFamily(
            f"{PREFIX}_jobs_started", "Attempts started (a job started twice counts twice), by type.", labels=["type"]
        )
        finished = CounterMetricFamily(
            f"{PREFIX}_jobs_finished",
            "Jobs that reached a final status, by type and status.",
            labels=["type", "status"],
        )
        for job_type in types:
            rows = [row for (t, _), row in table.items() if t == job_type]
            created.add_metric([job_type], sum(row["jobs"] for row in rows))
            started.add_metric([job_type], sum(row["attempts"] or 0 for row in rows))
            for status in sorted(TERMINAL):
                row = table.get((job_type, status.value))
                finished.add_metric([job_type, status.value], row["jobs"] if row else 0)
        yield created
        yield started
        yield finished

        events = {(row["kind"], row["type"]): row["events"] for row in snapshot["events"]}
        for kind, doc in (
            ("retried", "Attempts that failed and were scheduled again, by type."),
            ("rescued", "Attempts whose worker stopped responding and were requeued, by type."),
        ):
            family = CounterMetricFamily(f"{PREFIX}_jobs_{kind}", doc, labels=["type"])
            for job_type in types:
                family.add_metric([job_type], events.get((kind, job_type), 0))
            yield family

        oldest = GaugeMetricFamily(
            f"{PREFIX}_oldest_queued_job_age_seconds",
            "How long the longest-waiting queued job of each queue has waited (0: none waits).",
            labels=["queue"],
        )
        waiting = {row["queue"]: float(row["seconds"]) for row in snapshot["oldest"]}
        for queue in sorted(set(waiting) | set(queue_names())):
            oldest.add_metric([queue], max(0.0, waiting.get(queue, 0.0)))
        yield oldest

        yield _histogram(
            f"{PREFIX}_job_run_seconds",
            "Finished jobs: seconds from first start to end (retries included), by type.",
            _cumulative(snapshot["durations"], "run", RUN_SECONDS_BUCKETS),
            RUN_SECONDS_BUCKETS,
        )
        yield _histogram(
            f"{PREFIX}_job_queue_wait_seconds",
            "Started jobs: seconds from creation to first start (a requested run_at included), by type.",
            _cumulative(snapshot["durations"], "wait", WAIT_SECONDS_BUCKETS),
            WAIT_SECONDS_BUCKETS,
        )


class SchedulesCollector(Collector):
    """Schedule figures, read from the database at each scrape: totals for every schedule,
    and series of their own for at most ``JOBS_METRICS_SCHEDULES_MAX`` schedules (the
    oldest not ended), so that many schedules cannot flood Prometheus with series."""

    def collect(self) -> Iterator[Metric]:
        figures = selectors.schedule_figures(listed=int(settings.METRICS_SCHEDULES_MAX))
        states = GaugeMetricFamily(f"{PREFIX}_schedules", "Schedules in each state now.", labels=["state"])
        for state in ScheduleState:
            states.add_metric([state.value], figures[state.value])
        yield states
        yield CounterMetricFamily(
            f"{PREFIX}_schedule_jobs_created", "Jobs created by schedules.", value=figures["jobs_created"]
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_schedule_late_seconds",
            "How long the most overdue active schedule's next fire time has passed (0: none is due): "
            "a value above a few maintenance intervals means no cluster fires schedules.",
            value=max(0.0, float(figures["late_seconds"])),
        )
        missed = CounterMetricFamily(
            f"{PREFIX}_schedule_missed_fire_times",
            "Fire times that created no job of their own, by outcome: folded (catch_up once), skipped "
            "(catch_up skip), refused (the application was at JOBS_MAX_UNFINISHED_PER_APP).",
            labels=["outcome"],
        )
        outcomes = {"folded": 0, "skipped": 0, "refused": 0}
        for row in figures["missed"]:
            outcome = "folded" if row["kind"] == "folded" else "refused" if row["reason"] != "catch_up" else "skipped"
            outcomes[outcome] += int(row["fire_times"])
        for outcome, count in outcomes.items():
            missed.add_metric([outcome], count)
        yield missed

        labels = ["schedule", "name", "app"]
        next_fire = GaugeMetricFamily(
            f"{PREFIX}_schedule_next_fire_timestamp_seconds",
            "When an active schedule fires next (Unix time).",
            labels=labels,
        )
        last_fire = GaugeMetricFamily(
            f"{PREFIX}_schedule_last_fire_timestamp_seconds",
            "The fire time of a schedule's latest job (Unix time).",
            labels=labels,
        )
        last_job = GaugeMetricFamily(
            f"{PREFIX}_schedule_last_job_status",
            "1 for the status of a schedule's latest job (one series per schedule).",
            labels=[*labels, "status"],
        )
        for row in figures["schedules"]:
            names = [str(row["id"]), row["name"] or "", row["app_name"]]
            if row["state"] == ScheduleState.ACTIVE.value and row["next_fire_at"] is not None:
                next_fire.add_metric(names, row["next_fire_at"].timestamp())
            if row["last_fire_at"] is not None:
                last_fire.add_metric(names, row["last_fire_at"].timestamp())
            if row["last_job_status"] is not None:
                last_job.add_metric([*names, row["last_job_status"]], 1)
        yield next_fire
        yield last_fire
        yield last_job


class BatchesCollector(Collector):
    """Batch figures, read from the database at each scrape (one query)."""

    def collect(self) -> Iterator[Metric]:
        figures = selectors.batches_metrics()
        batches = GaugeMetricFamily(
            f"{PREFIX}_batches",
            "Batches now, by state (active: some job not ended; finished: every job ended).",
            labels=["state"],
        )
        for state in BatchState:
            batches.add_metric([state.value], figures[state.value])
        yield batches
        yield GaugeMetricFamily(
            f"{PREFIX}_batch_jobs_unfinished",
            "Jobs of active batches that have not ended yet.",
            value=figures["unfinished_jobs"],
        )


class _Both:
    """Several collectors as one, for one exposition."""

    def __init__(self, *collectors: Any) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The exposition body and its content type (text format, or OpenMetrics when asked)."""
    directory = multiprocess_dir()
    if directory:
        http: Any = CollectorRegistry(auto_describe=True)
        MultiProcessCollector(http, path=directory)
    else:
        http = HTTP_REGISTRY
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_Both(http, JobsCollector(), SchedulesCollector(), BatchesCollector())), content_type  # type: ignore[arg-type]
