"""The operator's view in a terminal: jobs, throughput, running jobs, failures, schedules,
active batches, clusters; or, with ``--job``, one job followed: its status, progress,
checkpoint and log lines."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections import deque
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from jobs import monitoring, selectors
from jobs.domain import AdminJob, LogLine, Status
from jobs.exceptions import DatabaseUnavailable, JobNotFound

#: Characters of a progress bar, between its brackets.
BAR_WIDTH = 20
#: Active batches shown, the oldest first.
BATCHES_SHOWN = 10


def progress_bar(percent: float | None, width: int = BAR_WIDTH) -> str:
    """``[#########-----------]  45.0%``; no progress recorded yet shows an empty bar."""
    if percent is None:
        return f"[{'-' * width}]      -"
    done = round(width * min(max(percent, 0.0), 100.0) / 100)
    return f"[{'#' * done}{'-' * (width - done)}] {percent:5.1f}%"


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


#: Control characters but the line break: a client's text (a log line, a progress or
#: error message, a schedule's name) must not drive the operator's terminal.
_CONTROLS = dict.fromkeys(c for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if c != 0x0A)


def printable(screen: str) -> str:
    """``screen`` without control characters (escape sequences above all) but line breaks."""
    return screen.translate(_CONTROLS)


def _one_line(text: Any, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def render_jobs(stats: dict[str, Any], overview: dict[str, Any]) -> list[str]:
    statuses = [s.value for s in Status]
    types = sorted({row["type"] for row in stats["counts"]})
    table = {(row["status"], row["type"]): row["jobs"] for row in stats["counts"]}
    width = max([9, *(len(t) for t in types)])
    lines = [f"{'TYPE':{width}}  " + "  ".join(f"{s:>9}" for s in statuses)]
    for job_type in types:
        lines.append(f"{job_type:{width}}  " + "  ".join(f"{table.get((s, job_type), 0):>9}" for s in statuses))
    totals = [sum(v for (s, _), v in table.items() if s == status) for status in statuses]
    lines.append(f"{'all':{width}}  " + "  ".join(f"{n:>9}" for n in totals))
    running_total = totals[statuses.index(Status.RUNNING)]

    window = overview["window_seconds"]
    finished = overview["finished"]
    total = sum(finished.values())
    parts = ", ".join(f"{finished.get(s, 0)} {s}" for s in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED))
    wait = stats["oldest_queued_seconds"]
    lines += [
        "",
        f"finished in the last {window} s: {total} ({parts}), {total / window:.2f} jobs/s",
        f"oldest queued job waiting: {'-' if wait is None else f'{wait:.1f}s'}",
        "",
        f"running jobs: {running_total}"
        + (
            f" (the {len(overview['running'])} longest-running below)"
            if running_total > len(overview["running"])
            else ""
        ),
    ]
    for job in overview["running"]:
        progress = job["progress"] or {}
        ran = (job["now"] - job["started_at"]).total_seconds() if job["started_at"] else 0.0
        lines.append(
            f"  {job['id']!s}  {job['type'][:14]:14} try {job['attempts']}/{job['max_attempts']}  "
            f"{progress_bar(progress.get('percent'))}  {duration(ran):>7}  {job['worker'] or '-'}  "
            f"{_one_line(progress.get('message') or '', 40)}"
        )
    lines += ["", "latest failures:" if overview["failures"] else "latest failures: none"]
    for job in overview["failures"]:
        error = job["error"] or {}
        text = _one_line(f"{error.get('type', '?')}: {error.get('message', '')}", 80)
        lines.append(
            f"  {job['finished_at']:%H:%M:%S}  {job['id']!s}  {job['type'][:14]:14} try {job['attempts']}  {text}"
        )
    lines += ["", "latest jobs:"]
    for job in stats["latest"]:
        percent = (job["progress"] or {}).get("percent")
        done = "" if percent is None else f"{percent:5.1f}%"
        lines.append(
            f"  {job['updated_at']:%H:%M:%S}  {job['id']!s}  {job['type'][:14]:14} {job['status']:9} "
            f"try {job['attempts']}  {done:6}  {job['app_name'][:20]}"
        )
    return lines


def render_batches(active: dict[str, Any]) -> list[str]:
    """One line per active batch (the oldest first): its progress bar, jobs ended of its
    total, its age and its jobs per status."""
    shown = active["batches"]
    more = f" (the {len(shown)} oldest below)" if active["active"] > len(shown) else ""
    lines = [f"active batches: {active['active']}{more}"]
    for batch in shown:
        counts = batch["counts"] or {}
        parts = ", ".join(f"{counts[status.value]} {status.value}" for status in Status if counts.get(status.value))
        cancel = "  cancelling" if batch["cancel_requested_at"] else ""
        age = (batch["now"] - batch["created_at"]).total_seconds()
        lines.append(
            f"  {batch['id']!s}  {batch['app_name'][:16]:16} {progress_bar(float(batch['percent']))}  "
            f"{batch['total'] - batch['unfinished']:>5}/{batch['total']:<5} {duration(age):>7}  {parts}{cancel}"
        )
    return lines


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    return f"in {duration(seconds)}" if seconds >= 0 else f"{duration(-seconds)} late"


def render_schedules(figures: dict[str, Any], schedules: list[dict[str, Any]]) -> list[str]:
    """The schedules section: how many per state, then the soonest to fire (paused last)."""
    lines = [f"schedules: {figures['active']} active, {figures['paused']} paused, {figures['ended']} ended"]
    if not schedules:
        return lines
    lines.append(f"  {'NAME':24}  {'APP':16}  {'STATE':6}  {'WHEN':22}  {'NEXT FIRE':>12}  LAST JOB")
    for row in schedules:
        name = row["name"] or str(row["id"])[:8]
        when = row["cron"] + f" {row['timezone']}" if row["cron"] else f"every {row['every_seconds']}s"
        next_fire = _when(row["next_fire_at"], row["db_now"]) if row["state"] == "active" else "-"
        last = f"{row['last_job_id']!s} {row['last_job_status']}" if row["last_job_id"] else "-"
        lines.append(
            f"  {_one_line(name, 24):24}  {_one_line(row['app_name'], 16):16}  {row['state']:6}  "
            f"{_one_line(when, 22):22}  {next_fire:>12}  {last}"
        )
    return lines


def render_clusters(reports: monitoring.ClusterReports) -> list[str]:
    """The clusters as they report themselves, each one's STATE corrected by its JOBS (the
    running jobs of its worker processes, from the jobs table; "-" when it cannot be read)."""
    clusters = reports.clusters
    workers = sum(len(c.workers) for c in clusters)
    lines = [f"clusters (django-q2): {len(clusters)}, workers: {workers}"]
    if reports.unreadable_note:
        lines.append(f"  ! {reports.unreadable_note}")
    if clusters:
        host_width = max(4, *(len(c.host) for c in clusters))
        lines.append(
            f"  {'HOST':{host_width}}  {'CLUSTER':36}  {'STATE':8}  WORKERS  JOBS  {'UP':>7}  PID: WORKER PIDS"
        )
        for c in clusters:
            jobs = "-" if c.running_jobs is None else str(c.running_jobs)
            lines.append(
                f"  {c.host:{host_width}}  {c.id!s:36}  {c.state:8}  {len(c.workers):>7}  {jobs:>4}  "
                f"{duration(c.uptime_seconds):>7}  {c.pid}: {' '.join(str(pid) for pid in c.workers)}"
            )
    return lines


def render(*, latest: int, now: datetime | None = None, schedules: int = 10) -> str:
    """The whole screen as text: each part says so when its source cannot be read."""
    lines = [f"jobplatform — {(now or datetime.now()).strftime('%Y-%m-%d %H:%M:%S')}", ""]
    try:
        reports = monitoring.cluster_reports()
    except Exception as exc:  # the cache may be down; show it, keep going
        lines.append(f"clusters: cannot read the shared cache ({type(exc).__name__}: {exc})")
    else:
        try:
            reports = dataclasses.replace(reports, clusters=monitoring.with_running_jobs(reports.clusters))
        except DatabaseUnavailable:
            pass  # django-q2's own states, JOBS "-"; the part below says the database is down
        lines += render_clusters(reports)
    lines.append("")
    try:
        lines += render_jobs(selectors.platform_stats(latest=latest), selectors.monitor_overview())
        lines.append("")
        lines += render_schedules(selectors.schedule_figures(listed=0), selectors.schedule_overview(limit=schedules))
        lines += ["", *render_batches(selectors.batches_active(limit=BATCHES_SHOWN))]
    except DatabaseUnavailable as exc:
        lines.append(f"database unavailable: {exc}")
    return "\n".join(lines)


class JobFollower:
    """One job on the screen, its log tailed: each look reads the job and only the lines
    after the last one seen."""

    #: Lines read per query while catching up.
    PAGE = 500

    def __init__(self, job_id: uuid.UUID, *, lines: int) -> None:
        self.job_id = job_id
        self.after = 0
        self.lines: deque[LogLine] = deque(maxlen=lines)

    def look(self) -> AdminJob:
        """The job now, and every log line written since the last look."""
        if not self.lines.maxlen:
            return selectors.job_get_any(job_id=self.job_id)
        if self.after == 0:
            # The first look: only the latest lines matter.
            self.lines.extend(selectors.job_log_tail(job_id=self.job_id, limit=self.lines.maxlen))
            self.after = self.lines[-1].id if self.lines else 0
        while True:
            page = selectors.job_log_page_any(job_id=self.job_id, after=self.after, limit=self.PAGE)
            self.lines.extend(page.lines)
            if page.lines:
                self.after = page.lines[-1].id
            if len(page.lines) < self.PAGE:
                return page.job  # type: ignore[return-value]

    def render(self, *, now: datetime | None = None) -> str:
        try:
            job = self.look()
        except DatabaseUnavailable as exc:
            return f"database unavailable: {exc}"
        return "\n".join(render_job(job, list(self.lines), now=now))


def render_job(job: AdminJob, lines: list[LogLine], *, now: datetime | None = None) -> list[str]:
    """One job: what it is, where it is, its checkpoint, its latest log lines."""
    progress = job.progress or {}
    screen = [
        f"jobplatform — {(now or datetime.now()).strftime('%Y-%m-%d %H:%M:%S')} — job {job.id}",
        "",
        f"type {job.type}  application {job.app_name}  queue {job.queue}",
        f"status {job.status.value}  try {job.attempts}/{job.max_attempts}  worker {job.worker or '-'}"
        + (f"  re-runs {job.rerun_of}" if job.rerun_of else ""),
        f"progress {progress_bar(progress.get('percent'))}  {_one_line(progress.get('message') or '', 60)}",
    ]
    if job.error:
        error = f"{job.error.get('type')}: {job.error.get('message')}"
        screen.append(f"error {_one_line(error, 100)}")
    if job.checkpoint_at is not None:
        state = json.dumps(job.checkpoint, ensure_ascii=False, separators=(",", ":"))
        screen.append(f"checkpoint at {job.checkpoint_at:%H:%M:%S}: {_one_line(state, 100)}")
    else:
        screen.append("checkpoint: none")
    screen += ["", f"log: {job.log_lines} lines, {job.log_dropped} dropped (the latest below)"]
    for line in lines:
        at = line.at.strftime("%H:%M:%S.%f")[:-3]  # milliseconds
        fields = json.dumps(line.fields, ensure_ascii=False, separators=(",", ":")) if line.fields else ""
        text = f"  {at}  a{line.attempt}  {line.level:7}  {_one_line(line.message, 100)}  {_one_line(fields, 60)}"
        screen.append(text.rstrip())
    return screen


class Command(BaseCommand):
    help = (
        "The operator's view: jobs per status and type, throughput in the last minute, oldest queued job, "
        "running jobs with progress bars, recent failures, schedules (next fire, last job and its status), "
        "active batches, and django-q2's clusters and workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between refreshes (default 2).")
        parser.add_argument("--once", action="store_true", help="Print one snapshot as plain text and exit.")
        parser.add_argument("--latest", type=int, default=10, help="How many latest jobs to show (default 10).")
        parser.add_argument(
            "--schedules", type=int, default=10, help="How many schedules to show, soonest to fire first (default 10)."
        )
        parser.add_argument(
            "--job", help="Follow this job: its status, progress, checkpoint and log lines as they are written."
        )
        parser.add_argument("--lines", type=int, default=20, help="With --job: log lines shown (default 20).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["interval"] <= 0:
            raise CommandError("--interval must be a positive number of seconds.")
        if options["latest"] < 0 or options["schedules"] < 0:
            raise CommandError("--latest and --schedules must be zero or more.")
        if options["lines"] < 0:
            raise CommandError("--lines must be zero or more.")
        follower = self._follower(options["job"], options["lines"]) if options["job"] is not None else None

        def draw() -> str:
            if follower is not None:
                return printable(follower.render())
            return printable(render(latest=options["latest"], schedules=options["schedules"]))

        if options["once"]:
            self.stdout.write(draw())
            return
        try:
            while True:
                # A long-lived process has no request cycle to drop a connection the
                # server closed (restart, failover): do it here, or never recover.
                close_old_connections()
                screen = draw()
                # Home, draw, then clear what the previous (longer) screen left below.
                self.stdout.write("\x1b[H" + screen.replace("\n", "\x1b[K\n") + "\x1b[K\x1b[J", ending="\n")
                self.stdout.flush()
                time.sleep(options["interval"])
        except KeyboardInterrupt:
            return

    def _follower(self, raw: str, lines: int) -> JobFollower:
        try:
            job_id = uuid.UUID(raw)
            selectors.job_get_any(job_id=job_id)
        except (ValueError, JobNotFound):
            raise CommandError(f"No job with the id {raw!r}.") from None
        return JobFollower(job_id, lines=lines)
