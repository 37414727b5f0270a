from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from jobs import selectors
from jobs.domain import Status
from jobs.exceptions import DatabaseUnavailable


def render(stats: dict[str, Any]) -> str:
    """The monitor's screen as text."""
    statuses = [s.value for s in Status]
    types = sorted({row["type"] for row in stats["counts"]})
    table = {(row["status"], row["type"]): row["jobs"] for row in stats["counts"]}
    width = max([9, *(len(t) for t in types)])
    lines = [f"jobplatform — {time.strftime('%Y-%m-%d %H:%M:%S')}", ""]
    lines.append(f"{'TYPE':{width}}  " + "  ".join(f"{s:>9}" for s in statuses))
    for job_type in types:
        lines.append(f"{job_type:{width}}  " + "  ".join(f"{table.get((s, job_type), 0):>9}" for s in statuses))
    totals = [sum(v for (s, _), v in table.items() if s == status) for status in statuses]
    lines.append(f"{'all':{width}}  " + "  ".join(f"{n:>9}" for n in totals))
    wait = stats["oldest_queued_seconds"]
    lines += ["", f"oldest queued job waiting: {'-' if wait is None else f'{wait:.1f}s'}", "", "latest jobs:"]
    for job in stats["latest"]:
        percent = (job["progress"] or {}).get("percent")
        done = "" if percent is None else f"{percent:5.1f}%"
        lines.append(
            f"  {job['updated_at']:%H:%M:%S}  {job['id']!s}  {job['type'][:14]:14} {job['status']:9} "
            f"try {job['attempts']}  {done:6}  {job['app_name'][:20]}"
        )
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Live terminal monitor: jobs per status and type, oldest queued job's age, latest jobs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between refreshes (default 2).")
        parser.add_argument("--once", action="store_true", help="Print one snapshot and exit.")
        parser.add_argument("--latest", type=int, default=10, help="How many latest jobs to show (default 10).")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            try:
                screen = render(selectors.platform_stats(latest=options["latest"]))
            except DatabaseUnavailable as exc:
                screen = f"database unavailable: {exc}"
            if options["once"]:
                self.stdout.write(screen)
                return
            self.stdout.write("\x1b[2J\x1b[H" + screen)
            self.stdout.flush()
            try:
                time.sleep(options["interval"])
            except KeyboardInterrupt:
                return
