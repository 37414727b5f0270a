"""django-q2's ``qcluster`` with a shutdown grace period.

Same cluster, same options. On SIGTERM/SIGINT django-q2 stops fetching and waits for
its workers without limit; here, once ``JOBS_SHUTDOWN_GRACE`` seconds have passed,
whatever still runs is killed so the process exits. Those jobs are not lost: their
leases expire and any cluster's rescuer puts them back in the queue.

The cluster's main process also delivers completion callbacks (``jobs.runtime.callbacks``).

It also survives a SIGTERM sent to the whole process group (systemd's default
``KillMode=control-group``, ``kill -TERM -PGID``): django-q2's sentinel and workers
die at once then, and can leave a lock held that django-q2's own stop waits on
forever. Once no cluster process is left, this command exits instead of hanging.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

import psutil
from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django_q.cluster import Cluster
from django_q.conf import Conf
from django_q.management.commands.qcluster import Command as DjangoQClusterCommand

from jobs.conf import settings as jobs_settings
from jobs.queue import DEFAULT_QUEUE, queue_key, queue_names
from jobs.runtime import callbacks

logger = logging.getLogger(__name__)

#: After its processes are gone, how long the main process may take to finish by itself.
EXIT_WAIT = 5.0


def _alive_children() -> list[psutil.Process]:
    alive = []
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


def _running(processes: dict[int, psutil.Process]) -> list[psutil.Process]:
    """Those of ``processes`` still running (psutil tells a reused pid apart)."""
    alive = []
    for process in processes.values():
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


def enforce_grace(stop_requested: threading.Event, grace: float) -> None:
    """After a stop request: give running jobs ``grace`` seconds, then end the cluster.

    Every cluster process seen since the stop request is remembered: a worker whose
    sentinel exits first is re-parented out of this process's tree, and must not outlive
    the cluster (it would finish its job after the cluster said it stopped)."""
    stop_requested.wait()
    logger.warning("cluster stopping: running jobs have %.0fs to finish", grace)
    seen: dict[int, psutil.Process] = {}

    def survivors() -> list[psutil.Process]:
        seen.update((process.pid, process) for process in _alive_children())
        return _running(seen)

    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and survivors():
        time.sleep(0.2)
    left = survivors()
    if left:
        logger.warning("grace period over: killing %d cluster processes; their jobs will be rescued", len(left))
    # Repeat: a process may be forked while the others are being killed.
    for _ in range(10):
        if not left:
            break
        for process in left:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.1)
        left = survivors()
    # Normally the main thread finishes now. If a dead process left a lock held, it never
    # will: nothing runs any more, so leave.
    time.sleep(EXIT_WAIT)
    logger.warning("cluster processes are gone but the cluster did not stop; exiting")
    logging.shutdown()
    os._exit(128 + signal.SIGTERM)


class Command(DjangoQClusterCommand):
    help = "Starts a django-q2 cluster (with a shutdown grace period: JOBS_SHUTDOWN_GRACE)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--queue",
            default=DEFAULT_QUEUE,
            help="The named queue this cluster serves (JOBS_QUEUES; default: %(default)s). "
            "Start one cluster per queue, so urgent work never waits behind another queue's backlog.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings.SECRET_KEY  # noqa: B018  (django-q2 signs envelopes with it)
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        queue = options.get("queue") or DEFAULT_QUEUE
        if queue not in queue_names():
            raise CommandError(f"unknown queue {queue!r}; JOBS_QUEUES lists: {', '.join(queue_names())}")
        # django-q2 reads its cluster name (the envelopes' key it takes) when it builds
        # its broker, after this: the cluster serves this queue's envelopes only.
        Conf.CLUSTER_NAME = queue_key(queue)
        cluster = Cluster()
        stop_requested = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            stop_requested.set()
            cluster.sig_handler(signum, frame)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        threading.Thread(
            target=enforce_grace,
            args=(stop_requested, float(jobs_settings.SHUTDOWN_GRACE)),
            name="shutdown-grace",
            daemon=True,
        ).start()
        cluster.start()
        # Completion callbacks go out from this (the cluster's main) process, on threads of
        # their own, started after the sentinel was forked (no fork copies them).
        callbacks.start_background()
        if options.get("run_once", False):
            stop_requested.set()
            cluster.stop()
            return
        # django-q2 returns here and waits for its sentinel at interpreter exit, where no
        # thread may start new work: stay until the cluster has stopped (a stop request
        # joins the sentinel in the signal handler; this loop then ends).
        while cluster.sentinel is not None and cluster.sentinel.is_alive():
            time.sleep(0.5)
