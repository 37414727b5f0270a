"""The processes the benchmark starts (the two gunicorns, the platform's and the stock
django-q2 cluster), how they are stopped, and their peak memory."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks import ROOT

PLATFORM_SETTINGS = "jobplatform.settings.production"
BASELINE_SETTINGS = "benchmarks.baseline_settings"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s")


def gunicorn_worker(proc: subprocess.Popen) -> int:
    """The pid of one of a gunicorn master's workers."""
    import psutil

    return psutil.Process(proc.pid).children()[0].pid


class MemorySampler(threading.Thread):
    """Peak RSS per labelled process tree, sampled twice a second (psutil)."""

    def __init__(self) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.roots: dict[str, tuple[int, bool]] = {}  # label -> (pid, children only)
        self.peak_mb: dict[str, float] = {}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def watch(self, label: str, pid: int, *, children_only: bool) -> None:
        with self._lock:
            self.roots[label] = (pid, children_only)

    def unwatch(self, label: str) -> None:
        self.sample()
        with self._lock:
            self.roots.pop(label, None)

    def sample(self) -> None:
        import psutil

        with self._lock:
            roots = dict(self.roots)
        for label, (pid, children_only) in roots.items():
            try:
                root = psutil.Process(pid)
                procs = root.children(recursive=True) + ([] if children_only else [root])
            except psutil.Error:
                continue
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    rss = proc.memory_info().rss / 2**20
                    self.peak_mb[label] = max(self.peak_mb.get(label, 0.0), rss)

    def run(self) -> None:
        while not self._stop_event.wait(0.5):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        if self.ident is not None:  # a run that failed before it started still cleans up
            self.join(timeout=5)


class Processes:
    """Every process the benchmark starts, each the leader of its own process group,
    so stopping one stops what it forked (gunicorn workers, cluster workers). Each runs in
    the project's root with ``env`` and the settings module it is started with, its
    output in ``log_dir``; the memory sampler watches the gunicorns' workers and the
    clusters' every process."""

    def __init__(self, log_dir: Path, env: dict[str, str], memory: MemorySampler) -> None:
        self.log_dir = log_dir
        self.env = env
        self.memory = memory
        self.started: list[subprocess.Popen] = []

    def spawn(self, name: str, args: list[str], settings_module: str) -> subprocess.Popen:
        env = {**self.env, "DJANGO_SETTINGS_MODULE": settings_module}
        log = open(self.log_dir / f"{name}-{len(self.started)}.log", "w")
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.started.append(proc)
        return proc

    def gunicorn(self, name: str, settings_module: str, *, port: int, health: str, workers: int) -> subprocess.Popen:
        """Sync gunicorn on 127.0.0.1:``port``, returned once ``health`` answers 200."""
        args = [sys.executable, "-m", "gunicorn", "jobplatform.wsgi", "--bind", f"127.0.0.1:{port}"]
        args += ["--workers", str(workers), "--worker-class", "sync", "--graceful-timeout", "5"]
        proc = self.spawn(name, args, settings_module)
        wait_http(f"http://127.0.0.1:{port}{health}")
        self.memory.watch(f"{name} worker", proc.pid, children_only=True)
        return proc

    def cluster(self, name: str, settings_module: str) -> subprocess.Popen:
        proc = self.spawn(name, [sys.executable, "manage.py", "qcluster"], settings_module)
        self.memory.watch(f"{name} process", proc.pid, children_only=False)
        return proc

    def stop_cluster(self, name: str, proc: subprocess.Popen) -> None:
        self.memory.unwatch(f"{name} process")
        self.stop(proc)

    @staticmethod
    def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
        """SIGTERM to the group, then SIGKILL to whatever of the group is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            # Also a group whose leader is gone may keep members: kill the group anyway.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
