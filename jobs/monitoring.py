"""What operators see: django-q2's clusters (through the shared cache) and readiness.

Every django-q2 cluster saves its status (host, pids, state) in the shared cache
(``CACHES["shared"]``, ``Q_CLUSTER["cache"]``) every guard cycle, with a 3-second
expiry: a cluster that stops reporting disappears by itself. ``qinfo``, ``qmonitor``,
``qmemory``, ``jobs_top`` and ``/ready`` all read the same records.

django-q2 signs each record with ``SECRET_KEY`` and skips, silently, any it cannot
verify: a monitor run with another key than the clusters' would show none. Here such
records are counted (:attr:`ClusterReports.unreadable`) so that every monitor says so.

django-q2's own state says Idle whenever its internal queues are empty, which they are
while every worker runs a job it already took; :attr:`ClusterStatus.state` corrects that
from the jobs table (the running jobs whose worker is one of the cluster's processes).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.signing import BadSignature, SignedPackage

from . import selectors
from .exceptions import DatabaseUnavailable

#: The states of a cluster that takes work (django-q2 also reports Stopping and Stopped).
SERVING = frozenset({str(Conf.STARTING), str(Conf.IDLE), str(Conf.WORKING)})


@dataclass(frozen=True)
class ClusterStatus:
    """One django-q2 cluster as it last reported itself."""

    id: uuid.UUID
    host: str
    #: The ``qcluster`` process.
    pid: int
    status: str
    #: Pids of its worker processes.
    workers: tuple[int, ...]
    reincarnations: int
    task_queue: int
    started_at: datetime | None
    reported_at: datetime

    #: Jobs the jobs table says its worker processes are running (None: not looked up).
    running_jobs: int | None = None

    @property
    def uptime_seconds(self) -> float:
        return (timezone.now() - self.started_at).total_seconds() if self.started_at else 0.0

    @property
    def serving(self) -> bool:
        return self.status in SERVING

    @property
    def worker_names(self) -> list[str]:
        """Its workers as the jobs table names them (``jobs.runtime.worker.worker_name``)."""
        return [f"{self.host}:{pid}" for pid in self.workers]

    @property
    def state(self) -> str:
        """django-q2's status, except Working (not Idle) while its workers run jobs."""
        if self.running_jobs and self.status == str(Conf.IDLE):
            return str(Conf.WORKING)
        return self.status


@dataclass(frozen=True)
class ClusterReports:
    """What the shared cache holds about the clusters."""

    #: The clusters whose report this process could verify, by host and id.
    clusters: list[ClusterStatus]
    #: Reports signed with another ``SECRET_KEY`` than this process's: clusters it cannot see.
    unreadable: int = 0

    @property
    def unreadable_note(self) -> str | None:
        """The sentence every monitor shows when some reports cannot be read."""
        if not self.unreadable:
            return None
        reports = "report is" if self.unreadable == 1 else "reports are"
        return (
            f"{self.unreadable} cluster status {reports} signed with another SECRET_KEY than this process's "
            "and cannot be read: run this with the clusters' SECRET_KEY (the web servers need it too)."
        )


def _status_records() -> list[Any]:
    """The live status records, read without writing. django-q2's ``get_stats`` also prunes
    its list of record keys while iterating over it, which skips the record after each
    expired one (a live cluster missing from that read), and writes the list back, which
    can drop a cluster that registered meanwhile (until its next save). The clusters
    themselves prune the list when one registers (``set_stat``)."""
    cache = get_broker().cache
    if cache is None:
        return []
    keys = cache.get(Conf.Q_STAT) or []
    records = cache.get_many(keys) if keys else {}
    return [records[key] for key in keys if records.get(key)]


def cluster_reports() -> ClusterReports:
    """Every cluster that reported in the last few seconds, from any host, by host and id;
    and how many reports could not be verified (``Stat.get_all`` skips those silently).

    Raises whatever the cache backend raises when it cannot be read.
    """
    clusters: list[ClusterStatus] = []
    unreadable = 0
    for pack in _status_records():
        try:
            stat = SignedPackage.loads(pack)
        except BadSignature:
            unreadable += 1
            continue
        clusters.append(
            ClusterStatus(
                id=stat.cluster_id,
                host=stat.host,
                pid=stat.pid,
                status=str(stat.status),
                workers=tuple(stat.workers),
                reincarnations=stat.reincarnations,
                task_queue=stat.task_q_size,
                started_at=stat.tob,
                reported_at=stat.timestamp,
            )
        )
    return ClusterReports(sorted(clusters, key=lambda c: (c.host, str(c.id))), unreadable)


def refuse_unreadable(monitor: str) -> None:
    """Before django-q2's full-screen monitors (``qmonitor``, ``qmemory``), which would leave
    out, silently, every cluster whose report this process cannot verify: CommandError
    saying so. A cache that cannot be read is left for the monitor itself to report."""
    try:
        note = cluster_reports().unreadable_note
    except Exception:  # the cache's backend raises its own errors; django-q2 shows them
        return
    if note:
        raise CommandError(f"{note} {monitor} would leave those clusters out; jobs_top and qinfo show the others.")


def with_running_jobs(clusters: list[ClusterStatus]) -> list[ClusterStatus]:
    """``clusters`` with ``running_jobs`` read from the jobs table (raises
    DatabaseUnavailable when it cannot be read)."""
    running = selectors.running_by_worker(workers=[name for c in clusters for name in c.worker_names])
    return [dataclasses.replace(c, running_jobs=sum(running.get(name, 0) for name in c.worker_names)) for c in clusters]


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def readiness() -> dict[str, str]:
    """Each readiness check by name: ``"ok"``, or what is missing.

    ``database``: it answers a query. ``migrations``: none is left to apply (Django's
    own migration plan, the check ``migrate --check`` makes). ``cluster``: at least one
    django-q2 cluster that takes work reported itself within the last few seconds.
    """
    checks: dict[str, str] = {}
    try:
        selectors.database_health()
        checks["database"] = "ok"
    except DatabaseUnavailable as exc:
        checks["database"] = f"unavailable: {_short(exc)}"
    if checks["database"] == "ok":
        try:
            executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
            pending = [f"{migration.app_label}.{migration.name}" for migration, backwards in plan]
            checks["migrations"] = f"pending: {', '.join(pending)}" if pending else "ok"
        except Exception as exc:  # a readiness probe reports, it does not crash
            checks["migrations"] = f"unknown: {_short(exc)}"
    else:
        checks["migrations"] = "unknown: the database is unavailable"
    try:
        reports = cluster_reports()
    except Exception as exc:  # the cache may be down: that is the answer
        connections[DEFAULT_DB_ALIAS].close_if_unusable_or_obsolete()
        checks["cluster"] = f"unknown: the shared cache cannot be read ({_short(exc)})"
    else:
        clusters = reports.clusters
        serving = [c for c in clusters if c.serving]
        if serving:
            checks["cluster"] = "ok"
        elif clusters:
            checks["cluster"] = "none serving: " + ", ".join(f"{c.host} {c.status.lower()}" for c in clusters)
        else:
            checks["cluster"] = "none seen"
        if not serving and reports.unreadable_note:
            checks["cluster"] += f"; {reports.unreadable_note}"
    return checks
