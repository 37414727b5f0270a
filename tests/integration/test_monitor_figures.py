"""Monitors that tell the truth, against the real database and django-q2's own status records:
a cluster whose workers run jobs is Working, qinfo counts the jobs table, and a status
record signed with another SECRET_KEY is reported, not skipped in silence.
(Real clusters in real terminals: tests/e2e/test_monitors.py.)"""

from __future__ import annotations

import io
import re
import socket
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.conf import Conf
from rest_framework.test import APIClient

from jobs import monitoring, services
from jobs.management.commands.qinfo import rate
from tests.integration.test_monitoring import report_cluster

HOST = socket.gethostname()


def command(name: str, *args: str) -> str:
    out = io.StringIO()  # not a terminal: the plain layout
    call_command(name, *args, stdout=out)
    return out.getvalue()


def running_job(app, worker: str, *, started_seconds_ago: float = 0.0, raw=None):
    job, _ = services.job_create(app=app, type="countdown", params={"seconds": 60}, metadata={})
    claimed = services.job_claim(job_id=job.id, worker=worker)
    assert claimed is not None
    if started_seconds_ago:
        raw.execute(
            "UPDATE jobs_job SET started_at = now() - make_interval(secs => %s) WHERE id = %s",
            [started_seconds_ago, str(job.id)],
        )
    return claimed


@pytest.fixture
def other_key(monkeypatch):
    """Save status records as a cluster with another SECRET_KEY would (django-q2 signs with
    Conf.SECRET_KEY, read once from the settings)."""

    def report(**kwargs):
        monkeypatch.setattr(Conf, "SECRET_KEY", "another-deployment's-key")
        try:
            return report_cluster(**kwargs)
        finally:
            monkeypatch.undo()

    return report


# -- a cluster running jobs is Working --------------------------------------------------------


def test_a_cluster_django_q2_calls_idle_is_working_while_its_workers_run_jobs(app):
    cluster_id = report_cluster(status=Conf.IDLE, workers=(201, 202, 203))
    [quiet] = monitoring.with_running_jobs(monitoring.cluster_reports().clusters)
    assert quiet.running_jobs == 0 and quiet.state == "Idle"

    running_job(app, f"{HOST}:202")
    running_job(app, f"{HOST}:203")
    running_job(app, "another-host:201")  # the same pid on another machine is another process
    running_job(app, f"{HOST}:999")  # a process no longer in the pool (died; rescued later)
    [cluster] = monitoring.with_running_jobs(monitoring.cluster_reports().clusters)
    assert cluster.status == "Idle"  # what django-q2 reported
    assert cluster.running_jobs == 2 and cluster.state == "Working"

    screen = command("jobs_top", "--once")
    assert re.search(rf"{HOST}\s+{cluster_id}\s+Working\s+3\s+2\s", screen), screen
    assert re.search(r"STATE\s+WORKERS\s+JOBS", screen), screen


def test_stopping_stays_stopping_whatever_runs(app):
    report_cluster(status=Conf.STOPPING, workers=(301,))
    running_job(app, f"{HOST}:301")
    [cluster] = monitoring.with_running_jobs(monitoring.cluster_reports().clusters)
    assert cluster.running_jobs == 1 and cluster.state == "Stopping"


# -- qinfo counts the jobs table --------------------------------------------------------------


def test_qinfo_shows_the_jobs_tables_figures_one_per_line_without_a_terminal(app, raw):
    report_cluster(workers=(401, 402))
    for seconds in (4, 2):
        services.job_succeed(job=running_job(app, "w:1", started_seconds_ago=seconds, raw=raw), result={})
    services.job_fail(job=running_job(app, "w:1"), error=ValueError("no"), retryable=False)
    running_job(app, f"{HOST}:401")
    services.job_cancel(app=app, job_id=services.job_create(app=app, type="pi", params={"digits": 5})[0].id)
    services.job_create(app=app, type="pi", params={"digits": 5})
    services.job_create(app=app, type="pi", params={"digits": 5}, run_at=timezone.now() + timedelta(hours=1))

    out = command("qinfo")
    lines = out.splitlines()
    assert re.fullmatch(r"-- Jobplatform [\d.]+ on .+ --", lines[0]), out
    figures = dict(re.fullmatch(r"([\w/ ]+):\s+(\S+)", line).groups() for line in lines[1:12])
    assert figures == {
        "Clusters": "1",
        "Workers": "2",
        "Restarts": "0",
        "Queued": "1",
        "Successes": "2",
        "Failures": "1",
        "Scheduled": "1",
        "Jobs/day": "2.00",
        "Avg time": "3.0000",
        "Running": "1",
        "Cancelled": "1",
    }, out
    assert "Clusters1" not in out.replace(" ", "")  # never glued together
    assert "django-q2's task table is not used" in out and "jobs_top, GET /metrics" in out


def test_qinfo_ids_lists_the_clusters_it_can_read(db):
    assert command("qinfo", "--ids").strip() == "No clusters appear to be running."
    first, second = report_cluster(), report_cluster()
    assert set(command("qinfo", "--ids").split()) == {str(first), str(second)}


def test_qinfo_picks_the_rate_unit_as_django_q2_does():
    assert rate(12) == (12.0, "day")
    assert rate(48) == (2.0, "hour")
    assert rate(24 * 60 * 3) == (3.0, "minute")
    assert rate(24 * 3600 * 2) == (2.0, "second")


# -- a status signed with another SECRET_KEY is said, not skipped -----------------------------

NOTE = (
    "1 cluster status report is signed with another SECRET_KEY than this process's and cannot be read: "
    "run this with the clusters' SECRET_KEY (the web servers need it too)."
)


def test_every_monitor_says_when_a_cluster_signed_with_another_key_is_there(db, other_key):
    assert monitoring.cluster_reports() == monitoring.ClusterReports([], 0)
    other_key()
    reports = monitoring.cluster_reports()
    assert reports.clusters == [] and reports.unreadable == 1 and reports.unreadable_note == NOTE

    assert f"Warning: {NOTE}" in command("qinfo").splitlines()
    assert f"  ! {NOTE}" in command("jobs_top", "--once").splitlines()
    for monitor in ("qmonitor", "qmemory"):
        with pytest.raises(CommandError) as refused:
            call_command(monitor, "--run-once")
        refusal = f"{NOTE} {monitor} would leave those clusters out; jobs_top and qinfo show the others."
        assert str(refused.value) == refusal

    response = APIClient().get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["cluster"] == f"none seen; {NOTE}"


def test_ready_stays_ready_while_a_cluster_it_can_read_serves(db, other_key):
    report_cluster()
    other_key()
    other_key()
    assert monitoring.cluster_reports().unreadable == 2
    response = APIClient().get("/ready")
    assert response.status_code == 200 and response.json()["checks"]["cluster"] == "ok"
    assert "2 cluster status reports are signed with another SECRET_KEY" in command("jobs_top", "--once")


def test_a_live_cluster_after_an_expired_record_is_still_seen(db):
    """django-q2's get_stats skips the record after each expired one (it prunes its key list
    while iterating over it); the monitors read the records without that."""
    from django_q.brokers import get_broker
    from django_q.status import Stat

    gone, live = report_cluster(), report_cluster()
    broker = get_broker()
    broker.cache.delete(Stat.get_key(gone))  # as when its 3-second expiry passes
    assert [c.id for c in monitoring.cluster_reports().clusters] == [live]
    assert Stat.get_all(broker=broker) == []  # django-q2's own read misses it (and prunes the list)
    assert [c.id for c in monitoring.cluster_reports().clusters] == [live]
