"""Rescue, redelivery and promotion, with time moved by SQL instead of sleeping."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg2
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from jobs import selectors, services
from jobs.domain import Status
from jobs.exceptions import StaleRun
from jobs.runtime import maintenance
from tests.conftest import database_url

RETRY = django_settings.Q_CLUSTER["retry"]


def sql(query: str, params=None):
    with connection.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else None


def running_job(app, **kwargs):
    job = services.job_create(app=app, type="fibonacci", params={"n": 5}, metadata={}, **kwargs)[0]
    return services.job_claim(job_id=job.id, worker="dead-host:123")


def expire_lease(job_id):
    sql("UPDATE jobs_job SET lease_expires_at = now() - interval '1 second' WHERE id = %s", [job_id])


def test_live_lease_is_left_alone(app):
    job = running_job(app)
    services.jobs_rescue_expired(limit=100)
    assert selectors.job_get(app=app, job_id=job.id).status is Status.RUNNING


def test_expired_lease_is_requeued_with_a_new_envelope(app):
    job = running_job(app)
    expire_lease(job.id)
    assert services.jobs_rescue_expired(limit=100) >= 1
    rescued = selectors.job_get(app=app, job_id=job.id)
    assert rescued.status is Status.QUEUED and rescued.attempts == 1
    assert rescued.envelope_id != job.envelope_id
    assert rescued.error["type"] == "WorkerLost"
    assert rescued.error["message"] == "the worker running attempt 1 stopped responding; the job was requeued"
    assert sql("SELECT count(*) FROM django_q_ormq WHERE id = %s AND lock <= now()", [rescued.envelope_id])[0][0] == 1
    again = services.job_claim(job_id=job.id, worker="new-host:1")
    assert again.attempts == 2
    events = selectors.job_events(app=app, job_id=job.id)
    assert [e.kind for e in events] == ["created", "queued", "started", "rescued", "started"]
    assert events[3].data["worker"] == "dead-host:123"


def test_expired_lease_with_attempts_spent_fails(app):
    job = running_job(app, max_attempts=1)
    expire_lease(job.id)
    services.jobs_rescue_expired(limit=100)
    failed = selectors.job_get(app=app, job_id=job.id)
    assert failed.status is Status.FAILED and failed.error["type"] == "WorkerLost" and failed.finished_at
    assert failed.error["message"] == (
        "the worker running attempt 1 of 1 stopped responding (crashed, was killed, or ran past its timeout)"
    )


def test_expired_lease_while_cancelling_ends_cancelled(app):
    job = running_job(app)
    services.job_cancel(app=app, job_id=job.id)
    expire_lease(job.id)
    services.jobs_rescue_expired(limit=100)
    assert selectors.job_get(app=app, job_id=job.id).status is Status.CANCELLED
    last = selectors.job_events(app=app, job_id=job.id)[-1]
    assert last.kind == "cancelled" and last.data["rescued"] is True
    assert last.data["error"] == {
        "type": "WorkerLost",
        "message": "the worker stopped while the job was being cancelled",
    }


def test_the_old_run_cannot_write_after_rescue(app):
    job = running_job(app)
    expire_lease(job.id)
    services.jobs_rescue_expired(limit=100)
    with pytest.raises(StaleRun):
        services.job_succeed(job=job, result="late")
    with pytest.raises(StaleRun):
        services.job_heartbeat(job=job)


def age_delivery(job_id, seconds=3600):
    sql("UPDATE jobs_job SET enqueued_at = now() - make_interval(secs => %s) WHERE id = %s", [seconds, job_id])


def test_vanished_envelope_is_redelivered(app):
    job = services.job_create(app=app, type="fibonacci", params={"n": 5}, metadata={})[0]
    sql("DELETE FROM django_q_ormq WHERE id = %s", [job.envelope_id])
    services.jobs_redeliver_lost(limit=100, retry=RETRY)
    assert selectors.job_get(app=app, job_id=job.id).envelope_id == job.envelope_id  # too recent to judge
    age_delivery(job.id)
    assert services.jobs_redeliver_lost(limit=100, retry=RETRY) >= 1
    after = selectors.job_get(app=app, job_id=job.id)
    assert after.envelope_id != job.envelope_id and after.status is Status.QUEUED
    assert sql("SELECT count(*) FROM django_q_ormq WHERE id = %s", [after.envelope_id])[0][0] == 1
    assert [e.kind for e in selectors.job_events(app=app, job_id=job.id)][-1] == "redelivered"


def test_waiting_visible_envelope_is_not_redelivered(app):
    job = services.job_create(app=app, type="fibonacci", params={"n": 5}, metadata={})[0]
    age_delivery(job.id)
    services.jobs_redeliver_lost(limit=100, retry=RETRY)
    assert selectors.job_get(app=app, job_id=job.id).envelope_id == job.envelope_id


def test_envelope_taken_long_ago_by_a_dead_cluster_is_redelivered(app, settings):
    retry = settings.Q_CLUSTER["retry"]
    job = services.job_create(app=app, type="fibonacci", params={"n": 5}, metadata={})[0]
    age_delivery(job.id)
    # Taken just now (lock = now + retry): a live cluster is about to run it.
    sql("UPDATE django_q_ormq SET lock = now() + make_interval(secs => %s) WHERE id = %s", [retry, job.envelope_id])
    services.jobs_redeliver_lost(limit=100, retry=RETRY)
    assert selectors.job_get(app=app, job_id=job.id).envelope_id == job.envelope_id
    # Taken an hour ago and the job never started: that cluster is gone.
    sql(
        "UPDATE django_q_ormq SET lock = now() + make_interval(secs => %s) - interval '1 hour' WHERE id = %s",
        [retry, job.envelope_id],
    )
    services.jobs_redeliver_lost(limit=100, retry=RETRY)
    assert selectors.job_get(app=app, job_id=job.id).envelope_id != job.envelope_id


def test_due_scheduled_jobs_are_promoted(app):
    job = services.job_create(
        app=app, type="fibonacci", params={"n": 5}, metadata={}, run_at=timezone.now() + timedelta(hours=1)
    )[0]
    services.jobs_promote_due(limit=100)
    assert selectors.job_get(app=app, job_id=job.id).status is Status.SCHEDULED
    sql("UPDATE jobs_job SET run_at = now() - interval '1 second' WHERE id = %s", [job.id])
    assert services.jobs_promote_due(limit=100) >= 1
    assert selectors.job_get(app=app, job_id=job.id).status is Status.QUEUED


def test_one_maintenance_pass_rescues_redelivers_and_promotes(app, settings):
    """What every cluster runs in the background: one pass does all three."""
    # A batch beyond what a reused test database holds: older candidates go first.
    settings.JOBS = {**settings.JOBS, "MAINTENANCE_BATCH": 100_000}
    lost_worker = running_job(app)
    expire_lease(lost_worker.id)
    lost_envelope = services.job_create(app=app, type="fibonacci", params={"n": 5}, metadata={})[0]
    sql("DELETE FROM django_q_ormq WHERE id = %s", [lost_envelope.envelope_id])
    age_delivery(lost_envelope.id)
    due = services.job_create(
        app=app, type="fibonacci", params={"n": 5}, metadata={}, run_at=timezone.now() + timedelta(hours=1)
    )[0]
    sql("UPDATE jobs_job SET run_at = now() - interval '1 second' WHERE id = %s", [due.id])
    done = maintenance.tick()
    assert done["rescued"] >= 1 and done["redelivered"] >= 1 and done["promoted"] >= 1
    assert selectors.job_get(app=app, job_id=lost_worker.id).status is Status.QUEUED
    assert selectors.job_get(app=app, job_id=lost_envelope.id).envelope_id != lost_envelope.envelope_id
    assert selectors.job_get(app=app, job_id=due.id).status is Status.QUEUED


def test_each_maintenance_transition_handles_at_most_its_limit(app):
    """A pass is bounded: three candidates of each kind, a limit of two, two handled."""
    for _ in range(3):
        expire_lease(running_job(app).id)
        lost = services.job_create(app=app, type="fibonacci", params={"n": 5}, metadata={})[0]
        sql("DELETE FROM django_q_ormq WHERE id = %s", [lost.envelope_id])
        age_delivery(lost.id)
        services.job_create(
            app=app, type="fibonacci", params={"n": 5}, metadata={}, run_at=timezone.now() + timedelta(hours=1)
        )
    sql("UPDATE jobs_job SET run_at = now() - interval '1 second' WHERE app_id = %s AND status = 'scheduled'", [app.id])
    assert services.jobs_rescue_expired(limit=2) == 2
    assert services.jobs_redeliver_lost(limit=2, retry=RETRY) == 2
    assert services.jobs_promote_due(limit=2) == 2


def test_a_maintenance_pass_takes_its_batch_size_from_the_setting(app, settings):
    settings.JOBS = {**settings.JOBS, "MAINTENANCE_BATCH": 1}
    for _ in range(2):
        expire_lease(running_job(app).id)
        lost = services.job_create(app=app, type="fibonacci", params={"n": 5}, metadata={})[0]
        sql("DELETE FROM django_q_ormq WHERE id = %s", [lost.envelope_id])
        age_delivery(lost.id)
        services.job_create(
            app=app, type="fibonacci", params={"n": 5}, metadata={}, run_at=timezone.now() + timedelta(hours=1)
        )
    sql("UPDATE jobs_job SET run_at = now() - interval '1 second' WHERE app_id = %s AND status = 'scheduled'", [app.id])
    done = maintenance.tick()
    assert (done["rescued"], done["redelivered"], done["promoted"]) == (1, 1, 1)


class ClosingMaintenanceThread(maintenance.MaintenanceThread):
    """The real thread, closing its own database connection when it ends."""

    def run(self) -> None:
        try:
            super().run()
        finally:
            connection.close()


@pytest.mark.django_db(transaction=True)
def test_the_maintenance_thread_rescues_on_its_own_survives_an_outage_and_stops(settings, monkeypatch):
    """What each cluster's workers start: a pass every interval, a database outage logged
    and outlived, and a stop when asked."""
    from jobs.exceptions import DatabaseUnavailable
    from tests.integration.conftest import new_app

    settings.JOBS = {**settings.JOBS, "MAINTENANCE_INTERVAL": 0.05}
    app, _ = new_app()
    job = running_job(app)
    expire_lease(job.id)
    real_tick, passes = maintenance.tick, []

    def tick_after_an_outage():
        passes.append(1)
        if len(passes) == 1:
            raise DatabaseUnavailable("the database went away")
        return real_tick()

    monkeypatch.setattr(maintenance, "tick", tick_after_an_outage)
    thread = ClosingMaintenanceThread()
    thread.start()
    try:
        for _ in range(200):
            if selectors.job_get(app=app, job_id=job.id).status is Status.QUEUED:
                break
            threading.Event().wait(0.05)
        assert selectors.job_get(app=app, job_id=job.id).status is Status.QUEUED
        assert len(passes) >= 2
    finally:
        thread.stopping.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_start_background_starts_one_thread_per_process(monkeypatch):
    monkeypatch.setattr(maintenance, "_thread", None)
    monkeypatch.setattr(maintenance.MaintenanceThread, "run", lambda self: self.stopping.wait())
    first = maintenance.start_background()
    try:
        assert first.is_alive() and first.daemon and maintenance.start_background() is first
    finally:
        first.stopping.set()
        first.join(timeout=10)
    second = maintenance.start_background()  # the first one ended: a new one
    second.stopping.set()
    assert second is not first


@pytest.mark.django_db(transaction=True)
def test_rescuers_skip_rows_another_rescuer_holds():
    """Two clusters rescuing at once: a locked row is skipped, not waited for."""
    from tests.integration.conftest import new_app

    app, _ = new_app()
    job = running_job(app)
    expire_lease(job.id)
    other = psycopg2.connect(database_url(connection.settings_dict))
    try:
        with other.cursor() as cur:
            cur.execute("SELECT id FROM jobs_job WHERE id = %s FOR UPDATE", [str(job.id)])
            services.jobs_rescue_expired(limit=100)  # returns at once instead of blocking
            assert selectors.job_get(app=app, job_id=job.id).status is Status.RUNNING
        other.rollback()
    finally:
        other.close()
    services.jobs_rescue_expired(limit=100)
    assert selectors.job_get(app=app, job_id=job.id).status is Status.QUEUED
