"""What operators see: django-q2's clusters (through the shared cache) and readiness.

Every django-q2 cluster saves its status (host, pids, state) in the shared cache
(``CACHES["shared"]``, ``Q_CLUSTER["cache"]``) every guard cycle, with a 3-second
expiry: a cluster that stops reporting disappears by itself. ``qinfo``, ``qmonitor``,
``qmemory``, ``jobs_top`` and ``/ready`` all read the same records.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.status import Stat

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

    @property
    def uptime_seconds(self) -> float:
        return (timezone.now() - self.started_at).total_seconds() if self.started_at else 0.0

    @property
    def serving(self) -> bool:
        return self.status in SERVING


def cluster_list() -> list[ClusterStatus]:
    """Every cluster that reported in the last few seconds, from any host, by host and id.

    Raises whatever the cache backend raises when it cannot be read.
    """
    clusters = [
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
        for stat in Stat.get_all(broker=get_broker())
    ]
    return sorted(clusters, key=lambda c: (c.host, str(c.id)))


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
        clusters = cluster_list()
    except Exception as exc:  # the cache may be down: that is the answer
        connections[DEFAULT_DB_ALIAS].close_if_unusable_or_obsolete()
        checks["cluster"] = f"unknown: the shared cache cannot be read ({_short(exc)})"
    else:
        serving = [c for c in clusters if c.serving]
        if serving:
            checks["cluster"] = "ok"
        elif clusters:
            checks["cluster"] = "none serving: " + ", ".join(f"{c.host} {c.status.lower()}" for c in clusters)
        else:
            checks["cluster"] = "none seen"
    return checks
