"""One benchmark run: the scratch database and the two servers every scenario shares, the
scenarios in their order, and the cleanup that runs whatever happened."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import ROOT, database
from benchmarks.processes import BASELINE_SETTINGS, PLATFORM_SETTINGS, MemorySampler, Processes, free_port
from benchmarks.report import Report
from benchmarks.scenarios import batch, compute, create, execute, growth, memory, pickup, read

if TYPE_CHECKING:
    from benchmarks.cli import Options


class Bench:
    """What the scenarios share: the options, the report, the scratch databases, the
    platform's and the baseline's servers, and a token of the platform."""

    def __init__(self, options: Options) -> None:
        self.o = options
        self.report = Report()
        self.log_dir = Path(tempfile.mkdtemp(prefix="jobplatform-bench-"))
        self.memory = MemorySampler()
        self.server = database.server_url()
        suffix = uuid.uuid4().hex[:8]
        self.db_name = f"jobplatform_bench_{suffix}"
        self.growth_db_name = f"jobplatform_bench_growth_{suffix}"
        self.growth_small_db_name = f"jobplatform_bench_growth_small_{suffix}"
        self.db_url = database.with_database(self.server, self.db_name)
        self.growth_url = database.with_database(self.server, self.growth_db_name)
        self.growth_small_url = database.with_database(self.server, self.growth_small_db_name)
        self.created_databases: list[str] = []
        self.secret = secrets.token_urlsafe(40)
        env = {
            **os.environ,
            "SECRET_KEY": self.secret,
            "DATABASE_URL": self.db_url,
            "EXTRA_INSTALLED_APPS": "benchmarks",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        self.procs = Processes(self.log_dir, env, self.memory)
        self.platform_port = free_port()
        self.baseline_port = free_port()
        while self.baseline_port == self.platform_port:
            self.baseline_port = free_port()
        self.platform_url = f"http://127.0.0.1:{self.platform_port}"
        self.baseline_url = f"http://127.0.0.1:{self.baseline_port}"
        self.token = ""
        self.app: Any = None
        self.platform_web: subprocess.Popen | None = None
        self.baseline_web: subprocess.Popen | None = None

    def say(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def wanted(self, *names: str) -> bool:
        return any(n in self.o.only for n in names)

    def run(self) -> None:
        started = time.monotonic()
        self.report.details["load_average_at_start"] = round(os.getloadavg()[0], 2)
        self.setup()
        self.platform_web, self.baseline_web = self.start_servers()
        # The cluster scenarios first: the jobs the API scenarios create are never run.
        if self.wanted("execute", "pickup", "compute"):
            self.cluster_scenarios()
        if self.wanted("create"):
            create.run(self)
        if self.wanted("read"):
            read.run(self)
        if self.wanted("growth"):
            growth.run(self)
        if self.wanted("batch"):
            batch.run(self)
        memory.run(self)
        self.report.details["elapsed_seconds"] = round(time.monotonic() - started, 1)

    def cluster_scenarios(self) -> None:
        """Execute, pickup and compute share one platform cluster; execute's jobs wait for
        it, its baseline cluster runs after it."""
        if self.wanted("execute"):
            execute.queue_platform_jobs(self)
        cluster = self.procs.cluster("platform cluster", PLATFORM_SETTINGS)
        try:
            platform_rate = execute.platform_rate(self, cluster) if self.wanted("execute") else None
            if self.wanted("pickup"):
                pickup.run(self)
            if self.wanted("compute"):
                compute.run(self)
        finally:
            self.procs.stop_cluster("platform cluster", cluster)
        if platform_rate is not None:
            execute.compare_with_baseline(self, platform_rate)

    # -- setup and teardown ------------------------------------------------------------------
    def setup(self) -> None:
        self.say(f"scratch database {self.db_name}; logs in {self.log_dir}")
        database.create(self.server, self.db_name)
        self.created_databases.append(self.db_name)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env={**self.procs.env, "DJANGO_SETTINGS_MODULE": PLATFORM_SETTINGS},
            check=True,
            timeout=300,
        )
        from benchmarks.tasks import TABLE_SQL

        database.sql(self.db_url, TABLE_SQL)
        if self.wanted("growth"):
            # Two copies of the freshly migrated schema (nothing is connected to it yet): the
            # large table and the small one.
            for name in (self.growth_db_name, self.growth_small_db_name):
                database.create(self.server, name, template=self.db_name)
                self.created_databases.append(name)
        # This process talks to the scratch database through the platform's own services.
        os.environ.update(
            {
                "SECRET_KEY": self.secret,
                "DATABASE_URL": self.db_url,
                "EXTRA_INSTALLED_APPS": "benchmarks",
                "DJANGO_SETTINGS_MODULE": "jobplatform.settings.test",
            }
        )
        import django

        django.setup()
        import logging

        logging.getLogger("django-q").setLevel(logging.WARNING)  # not one line per enqueued task
        from jobs import selectors, services

        self.token, _ = services.token_issue(app_name="bench")
        self.app = selectors.app_for_token(token=self.token)
        self.memory.start()

    def start_servers(self) -> tuple[subprocess.Popen, subprocess.Popen]:
        """The platform's gunicorn and the bare baseline's, the same number of workers."""
        workers = self.o.web_workers
        platform = self.procs.gunicorn(
            "platform gunicorn", PLATFORM_SETTINGS, port=self.platform_port, health="/health", workers=workers
        )
        baseline = self.procs.gunicorn(
            "baseline gunicorn", BASELINE_SETTINGS, port=self.baseline_port, health="/", workers=workers
        )
        return platform, baseline

    def teardown(self) -> None:
        self.memory.stop()
        self.procs.stop_all()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        for name in self.created_databases:
            try:
                database.drop(self.server, name)
            except Exception as exc:  # report, and keep dropping the others
                print(f"could not drop {name}: {exc}", file=sys.stderr)
        if not self.o.keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)
