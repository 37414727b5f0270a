"""Start-up checks: settings that would break the platform's guarantees refuse to start.

Django runs system checks before management commands, so ``qcluster`` (and
``runserver``, ``migrate``…) stops with these messages instead of running unsafely.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core import checks
from django.utils.module_loading import import_string

from .conf import q_cluster_retry, settings

_OTHER_BROKERS = ("redis", "disque", "iron_mq", "sqs", "mongo", "django_redis")


def _is_database_broker(path: str) -> bool:
    """A ``broker_class`` is allowed when it is django-q2's database broker or a subclass."""
    from django_q.brokers.orm import ORM

    try:
        broker = import_string(path)
    except ImportError:
        return False
    return isinstance(broker, type) and issubclass(broker, ORM)


def worker_settings_problems(q_cluster: dict[str, Any], jobs: Any) -> list[str]:
    """Every reason the django-q2 and JOBS settings cannot keep the guarantees."""
    problems: list[str] = []
    others = [key for key in _OTHER_BROKERS if q_cluster.get(key)]
    if q_cluster.get("broker_class") and not _is_database_broker(q_cluster["broker_class"]):
        others.append("broker_class")
    if not q_cluster.get("orm") or others:
        problems.append(
            "Q_CLUSTER must use the database broker ('orm': 'default') and no other broker "
            f"(found {', '.join(others) or 'no orm key'}): a job row and its queue envelope must commit together."
        )
    timeout = q_cluster.get("timeout")
    retry = q_cluster_retry(q_cluster)
    if timeout is None or timeout < jobs.MAX_TIMEOUT:
        problems.append(
            f"Q_CLUSTER['timeout'] ({timeout}) must be at least JOBS['MAX_TIMEOUT'] ({jobs.MAX_TIMEOUT}), "
            "or django-q2 would kill jobs that are still within their own timeout."
        )
    if timeout is not None and retry <= timeout:
        problems.append(
            f"Q_CLUSTER['retry'] ({retry}) must exceed Q_CLUSTER['timeout'] ({timeout}), "
            "or django-q2 re-delivers a healthy job while it is still running."
        )
    if jobs.LEASE_SECONDS < 2 * jobs.HEARTBEAT_INTERVAL:
        problems.append(
            f"JOBS['LEASE_SECONDS'] ({jobs.LEASE_SECONDS}) must be at least twice JOBS['HEARTBEAT_INTERVAL'] "
            f"({jobs.HEARTBEAT_INTERVAL}), or a healthy run can lose its lease between two heartbeats."
        )
    if q_cluster.get("sync"):
        problems.append("Q_CLUSTER['sync'] must be off: jobs run in the cluster, never inside the web request.")
    return problems


@checks.register()
def check_worker_settings(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    q_cluster = getattr(django_settings, "Q_CLUSTER", {})
    return [
        checks.Error(message, id=f"jobs.E{index:03d}")
        for index, message in enumerate(worker_settings_problems(q_cluster, settings), start=1)
    ]
