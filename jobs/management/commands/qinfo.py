"""django-q2's ``qinfo`` with the platform's own figures, readable with or without a terminal.

django-q2's ``qinfo`` counts its own task and schedule tables, which the platform never
writes (a job's outcome is in the jobs table): it would show Successes 0 and Failures 0
whatever ran. This one keeps its layout and options (``--config``, ``--ids``) and reads
the jobs table instead. Its clusters come from the same signed status records, and it
says so when some are signed with another ``SECRET_KEY`` (django-q2 skips them silently).
In a terminal the figures are a table, as django-q2 draws it; piped, one
``name: value`` per line (django-q2's cursor moves would glue them into
"Clusters1Workers2Restarts0").
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django_q import VERSION
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.management.commands.qinfo import Command as DjangoQInfoCommand

from jobs import monitoring, selectors
from jobs.domain import Status
from jobs.exceptions import DatabaseUnavailable

#: Where qinfo's job figures come from, said under them.
SOURCE = (
    "Jobs from the jobs table: Successes, Failures, Cancelled all time; Jobs/{per} and Avg time (start to finish) "
    "of those that succeeded in the last 24 h.",
    "django-q2's task table is not used. Per type and live: jobs_top, GET /metrics.",
)


def rate(succeeded_per_day: int) -> tuple[float, str]:
    """Jobs per second, minute, hour or day, whichever reads best (django-q2's own choice)."""
    if succeeded_per_day > 24 * 60 * 60:
        return succeeded_per_day / (24 * 60 * 60), "second"
    if succeeded_per_day > 24 * 60:
        return succeeded_per_day / (24 * 60), "minute"
    if succeeded_per_day > 24:
        return succeeded_per_day / 24, "hour"
    return float(succeeded_per_day), "day"


def figures(reports: monitoring.ClusterReports, totals: dict[str, Any]) -> tuple[list[list[tuple[str, str]]], str]:
    """The rows of (label, value) pairs, django-q2's three by three, and the rate's unit."""
    clusters = reports.clusters
    per_status: dict[str, int] = totals["per_status"]
    per_time, per = rate(totals["succeeded_recently"])
    rows = [
        [
            ("Clusters", str(len(clusters))),
            ("Workers", str(sum(len(c.workers) for c in clusters))),
            ("Restarts", str(sum(c.reincarnations for c in clusters))),
        ],
        [
            ("Queued", str(per_status.get(Status.QUEUED, 0))),
            ("Successes", str(per_status.get(Status.SUCCEEDED, 0))),
            ("Failures", str(per_status.get(Status.FAILED, 0))),
        ],
        [
            ("Scheduled", str(per_status.get(Status.SCHEDULED, 0))),
            (f"Jobs/{per}", f"{per_time:.2f}"),
            ("Avg time", f"{totals['mean_run_seconds']:.4f}"),
        ],
        [
            ("Running", str(per_status.get(Status.RUNNING, 0))),
            ("Cancelled", str(per_status.get(Status.CANCELLED, 0))),
        ],
    ]
    return rows, per


class Command(DjangoQInfoCommand):
    help = (
        "General information over all clusters, with the platform's job figures from the jobs table "
        "(django-q2's task table is not used)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if options.get("config"):
            super().handle(*args, **options)
            return
        try:
            reports = monitoring.cluster_reports()
        except Exception as exc:  # the cache's backend raises its own errors
            raise CommandError(f"cannot read the shared cache: {type(exc).__name__}: {exc}") from exc
        if options.get("ids"):
            for cluster in reports.clusters:
                self.stdout.write(str(cluster.id))
            if not reports.clusters:
                self.stdout.write("No clusters appear to be running.")
        else:
            try:
                totals = selectors.job_totals()
            except DatabaseUnavailable as exc:
                raise CommandError(f"database unavailable: {exc}") from exc
            self.info(reports, totals)
        if reports.unreadable_note:
            self.stdout.write(self.style.WARNING(f"Warning: {reports.unreadable_note}"))

    def info(self, reports: monitoring.ClusterReports, totals: dict[str, Any]) -> None:
        rows, per = figures(reports, totals)
        title = f"-- {Conf.PREFIX.capitalize()} {'.'.join(str(v) for v in VERSION)} on {get_broker().info()} --"
        if self.stdout.isatty():
            from blessed import Terminal

            term = Terminal()
            column = max(term.width // 6, 1)
            self.stdout.write(term.clear_eos + term.black_on_green(term.center(title)))
            for row in rows:
                cells = []
                for index, (label, value) in enumerate(row):
                    cells.append(term.move_x(2 * index * column) + term.cyan(label))
                    cells.append(term.move_x((2 * index + 1) * column) + term.white(value))
                self.stdout.write("".join(cells))
        else:
            width = max(len(label) for row in rows for label, _ in row) + 1
            self.stdout.write(title)
            for row in rows:
                for label, value in row:
                    self.stdout.write(f"{label + ':':{width}} {value}")
        for line in SOURCE:
            self.stdout.write(line.format(per=per))
