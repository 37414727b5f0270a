"""django-q2's ``qcluster`` with a shutdown grace period.

Same cluster, same options. On SIGTERM/SIGINT django-q2 stops fetching and waits for
its workers without limit; here, once ``JOBS_SHUTDOWN_GRACE`` seconds have passed,
whatever still runs is killed so the process exits. Those jobs are not lost: their
leases expire and any cluster's rescuer puts them back in the queue.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import psutil
from django.conf import settings
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQClusterCommand

from jobs.conf import settings as jobs_settings

logger = logging.getLogger(__name__)


def enforce_grace(cluster: Cluster, grace: float) -> None:
    """Wait for a stop request, then give the cluster ``grace`` seconds to finish."""
    while True:
        event = cluster.stop_event
        if event is None or event.is_set():
            break
        time.sleep(0.2)
    logger.warning("cluster stopping: running jobs have %.0fs to finish", grace)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if cluster.sentinel is None or not cluster.sentinel.is_alive():
            return
        time.sleep(0.2)
    survivors = psutil.Process(os.getpid()).children(recursive=True)
    logger.warning("grace period over: killing %d cluster processes; their jobs will be rescued", len(survivors))
    for process in survivors:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


class Command(DjangoQClusterCommand):
    help = "Starts a django-q2 cluster (with a shutdown grace period: JOBS_SHUTDOWN_GRACE)."

    def handle(self, *args: Any, **options: Any) -> None:
        settings.SECRET_KEY  # noqa: B018  (django-q2 signs envelopes with it)
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        cluster = Cluster()
        cluster.start()
        threading.Thread(
            target=enforce_grace,
            args=(cluster, float(jobs_settings.SHUTDOWN_GRACE)),
            name="shutdown-grace",
            daemon=True,
        ).start()
        if options.get("run_once", False):
            cluster.stop()
