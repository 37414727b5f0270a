"""qcluster's shutdown grace (``enforce_grace``) against real processes: what it kills once
the grace is over, including a worker re-parented out of the cluster's process tree."""

from __future__ import annotations

import subprocess
import sys
import threading

import psutil
import pytest

from jobs.management.commands import qcluster

#: A process that starts a long-running child, says its pid, and exits soon after: the
#: child is re-parented out of this test's tree, as a worker is when its sentinel exits.
MIDDLE = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(0.6)\n"
)


class Exited(Exception):
    pass


def test_a_worker_re_parented_out_of_the_tree_is_killed_once_the_grace_is_over(monkeypatch):
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE], stdout=subprocess.PIPE)
    grandchild = psutil.Process(int(middle.stdout.readline()))
    monkeypatch.setattr(qcluster, "EXIT_WAIT", 0)
    monkeypatch.setattr(qcluster.logging, "shutdown", lambda: None)

    def leave(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(qcluster.os, "_exit", leave)
    stop_requested = threading.Event()
    stop_requested.set()
    try:
        with pytest.raises(Exited):
            qcluster.enforce_grace(stop_requested, grace=2.0)
        assert middle.wait(timeout=5) == 0  # it ended by itself, leaving its child behind
        assert not grandchild.is_running() or grandchild.status() == psutil.STATUS_ZOMBIE
    finally:
        if grandchild.is_running():
            grandchild.kill()
