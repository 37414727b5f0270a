"""API throughput under gunicorn, measured with wrk (Debian package ``wrk``).

    .venv/bin/python benchmarks/api_throughput.py [--seconds 10] [--connections 16] [--web-workers 4]

Starts gunicorn on 127.0.0.1 against a scratch database (on the server the settings
point at), then runs wrk for a bounded time against ``POST /jobs`` (create: one
transaction, envelope + job row) and ``GET /jobs/{id}`` (one query after the token
lookup). No cluster runs, so created jobs just wait. The scratch database is dropped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POST_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"type": "fibonacci", "params": {"n": 1000}, "metadata": {"migration": "bench"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Token %s"
"""
GET_SCRIPT = """
wrk.headers["Authorization"] = "Token %s"
"""


def wrk(url: str, script: str, args: argparse.Namespace) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        result = subprocess.run(
            ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s", "-s", handle.name, url],
            capture_output=True,
            text=True,
            timeout=args.seconds + 60,
            check=True,
        )
    finally:
        os.unlink(handle.name)
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--web-workers", type=int, default=4)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobplatform.settings.test")
    import django

    django.setup()
    from django.conf import settings

    from tests.e2e.harness import Platform

    platform = Platform(dict(settings.DATABASES["default"]), Path(tempfile.mkdtemp(prefix="bench-logs-")))
    platform.create_database()
    try:
        platform.web_workers = args.web_workers
        platform.start_web()
        token = platform.token("bench")
        job = platform.create_job(platform.client(token), {"type": "fibonacci", "params": {"n": 10}})
        print(f"gunicorn --workers {args.web_workers}, wrk -c {args.connections} -d {args.seconds}s\n")
        print("POST /jobs")
        print(wrk(f"{platform.base_url}/jobs", POST_SCRIPT % token, args))
        print("GET /jobs/{id}")
        print(wrk(job["url"], GET_SCRIPT % token, args))
        rows = platform.sql("SELECT count(*) AS jobs, count(DISTINCT envelope_id) AS envelopes FROM jobs_job")
        print(f"rows written: {rows[0]['jobs']} jobs with {rows[0]['envelopes']} envelopes")
    finally:
        platform.stop_all()
        platform.drop_database()


if __name__ == "__main__":
    main()
