"""Worker throughput: how many jobs per second one qcluster finishes.

    .venv/bin/python benchmarks/worker_throughput.py [--jobs 2000] [--profile tuned|django-q2-defaults]

Creates a scratch database on the server the settings point at (DATABASE_URL, else
the embedded one), migrates it, creates N trivial jobs (fibonacci n=1) through the
normal service, starts a real ``qcluster`` and measures from the first job's start to
the last job's finish (database timestamps). Drops the scratch database afterwards.
Profile ``django-q2-defaults`` runs the same cluster with django-q2's default
tuning (bulk 1, poll 0.2 s, recycle 500, success results saved) for comparison.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROFILES = {
    "tuned": {},
    "django-q2-defaults": {
        "Q_BULK": "1",
        "Q_POLL": "0.2",
        "Q_RECYCLE": "500",
        "Q_SAVE_LIMIT": "250",
        "Q_QUEUE_LIMIT": "4",
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="tuned")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobplatform.settings.test")
    import django

    django.setup()
    import psycopg2
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections

    from tests.conftest import database_url

    server = dict(settings.DATABASES["default"])
    scratch = f"jobplatform_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(database_url(server, "postgres"))
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{scratch}"')
    url = database_url(server, scratch)
    connections.close_all()
    settings.DATABASES["default"]["NAME"] = scratch
    cluster = None
    try:
        call_command("migrate", verbosity=0)
        from jobs import selectors, services

        token, _ = services.token_issue(app_name="bench")
        app = selectors.app_for_token(token=token)
        created = time.monotonic()
        for _ in range(args.jobs):
            services.job_create(app=app, type="fibonacci", params={"n": 1}, metadata={})
        create_rate = args.jobs / (time.monotonic() - created)

        env = {**os.environ, **PROFILES[args.profile], "DATABASE_URL": url, "Q_WORKERS": str(args.workers)}
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + args.timeout
        with connection.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("SELECT count(*) FROM jobs_job WHERE status = 'succeeded'")
                if cur.fetchone()[0] == args.jobs:
                    break
                time.sleep(0.2)
            else:
                sys.exit(f"not finished within {args.timeout}s")
            cur.execute("SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM jobs_job")
            span = float(cur.fetchone()[0])
        print(f"profile={args.profile} workers={args.workers} jobs={args.jobs}")
        print(f"  created through the service: {create_rate:,.0f} jobs/s (one SQL statement each)")
        print(
            f"  executed by one qcluster:    {args.jobs / span:,.0f} jobs/s ({span:.2f}s, first start to last finish)"
        )
    finally:
        if cluster is not None:
            os.killpg(cluster.pid, 9)
            cluster.wait()
        connections.close_all()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
