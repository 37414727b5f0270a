"""Back-pressure and fairness: caps on an application's unfinished and running jobs."""

from __future__ import annotations

import io
import json
import threading
import uuid

import pytest
from django.core.management import call_command
from django.db import connection

from jobs import services
from jobs.runtime.worker import Outcome, execute_job
from tests.integration.conftest import new_app, second_waits_for_first


def post(api, body=None):
    body = body or {"type": "fibonacci", "params": {"n": 1}}
    return api.post("/jobs", data=json.dumps(body), content_type="application/json")


def test_a_create_beyond_the_unfinished_cap_is_429_and_stores_nothing(api, app, raw, settings):
    settings.JOBS = {**settings.JOBS, "MAX_UNFINISHED_PER_APP": 2}
    first, second = post(api).json(), post(api).json()
    raw.execute("SELECT count(*) FROM django_q_ormq")
    envelopes = raw.fetchone()[0]
    refused = post(api)
    assert refused.status_code == 429 and refused["Content-Type"] == "application/problem+json"
    assert refused["Retry-After"].isdigit() and "unfinished" in refused.json()["detail"]
    raw.execute("SELECT count(*) FROM django_q_ormq")
    assert raw.fetchone()[0] == envelopes  # no stray envelope
    other, _ = new_app()
    assert services.job_create(app=other, type="fibonacci", params={"n": 1})[1]  # another app is not capped
    api.post(f"/jobs/{first['id']}/cancel")  # one finishes: room again
    assert post(api).status_code == 201
    assert second["status"] == "queued"


def test_a_claim_beyond_the_running_cap_is_deferred_and_others_run(app, raw, settings):
    settings.JOBS = {**settings.JOBS, "FAIRNESS_DEFER_SECONDS": 30.0}
    services.app_set_max_running(app_name=app.name, max_running=1)
    a1, _ = services.job_create(app=app, type="fibonacci", params={"n": 1})
    a2, _ = services.job_create(app=app, type="fibonacci", params={"n": 1})
    assert services.job_claim(job_id=a1.id, worker="w1") is not None
    assert services.job_claim(job_id=a2.id, worker="w2") is None  # A runs its cap
    assert services.job_defer(job_id=a2.id)
    raw.execute(
        "SELECT extract(epoch FROM q.lock - now()) FROM django_q_ormq q JOIN jobs_job j ON j.envelope_id = q.id "
        "WHERE j.id = %s",
        [a2.id],
    )
    assert 29 <= raw.fetchone()[0] <= 30  # offered again later, not lost
    other, _ = new_app()
    b1, _ = services.job_create(app=other, type="fibonacci", params={"n": 1})
    assert services.job_claim(job_id=b1.id, worker="w3") is not None  # B is not held back by A
    assert not services.job_defer(job_id=b1.id)  # a claimed job is never deferred


def test_the_setting_caps_every_application_and_zero_lifts_it(app, settings):
    settings.JOBS = {**settings.JOBS, "MAX_RUNNING_PER_APP": 1}
    jobs = [services.job_create(app=app, type="fibonacci", params={"n": 1})[0] for _ in range(2)]
    assert services.job_claim(job_id=jobs[0].id, worker="w") is not None
    assert services.job_claim(job_id=jobs[1].id, worker="w") is None
    services.app_set_max_running(app_name=app.name, max_running=0)  # this application: no cap
    assert services.job_claim(job_id=jobs[1].id, worker="w") is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_exceed_the_cap():
    """Eight workers claim eight jobs of one application at once; its cap is 2."""
    app, _ = new_app()
    services.app_set_max_running(app_name=app.name, max_running=2)
    jobs = [services.job_create(app=app, type="fibonacci", params={"n": 1})[0] for _ in range(8)]
    claimed = []
    start = threading.Barrier(8)

    def claim(job_id):
        try:
            start.wait()
            if services.job_claim(job_id=job_id, worker="w") is not None:
                claimed.append(job_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(job.id,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(claimed) == 2


@pytest.mark.django_db(transaction=True)
def test_a_claim_waits_for_a_claim_in_flight_of_the_same_application():
    app, _ = new_app()
    services.app_set_max_running(app_name=app.name, max_running=1)
    first, second = (services.job_create(app=app, type="fibonacci", params={"n": 1})[0] for _ in range(2))

    def claim_first():
        assert services.job_claim(job_id=first.id, worker="w1") is not None

    answers = second_waits_for_first(claim_first, lambda: services.job_claim(job_id=second.id, worker="w2"))
    assert answers == [None]  # it saw the first claim once that committed


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second_kind", ["job", "batch", "schedule's fire"])
def test_a_create_waits_for_a_create_in_flight_at_the_unfinished_cap(settings, second_kind):
    """JOBS_MAX_UNFINISHED_PER_APP 1: a create in flight (not committed) holds the last
    place, so a job, a batch or a schedule's fire racing it is refused once it commits."""
    from jobs.exceptions import TooManyUnfinishedJobs

    settings.JOBS = {**settings.JOBS, "MAX_UNFINISHED_PER_APP": 1}
    app, _ = new_app()
    job = {"type": "fibonacci", "params": {"n": 1}}
    second = {
        "job": lambda: services.job_create(app=app, **job),
        "batch": lambda: services.batch_create(app=app, jobs=[job]),
        "schedule's fire": lambda: services.schedules_fire_due(limit=10),
    }[second_kind]
    if second_kind == "schedule's fire":
        schedule = services.schedule_create(app=app, fields={"job": job, "every": 3600, "catch_up": "skip"})
        with connection.cursor() as cur:
            cur.execute("UPDATE jobs_schedule SET next_fire_at = now() WHERE id = %s", [str(schedule.id)])
    [answer] = second_waits_for_first(lambda: services.job_create(app=app, **job), second)
    if second_kind == "schedule's fire":
        assert answer == 0  # the fire time is skipped, recorded as too_many_unfinished
    else:
        assert isinstance(answer, TooManyUnfinishedJobs), answer
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM jobs_job WHERE app_id = %s", [str(app.id)])
        assert cur.fetchone()[0] == 1


@pytest.mark.django_db(transaction=True)
def test_two_cancels_of_a_batch_racing_record_its_cancel_once():
    """The first cancel has not committed; the second waits for it, answers as it would
    have (a job still runs), and adds nothing to the batch's history or the job's."""
    from jobs import selectors

    app, _ = new_app()
    batch, _ = services.batch_create(app=app, jobs=[{"type": "fibonacci", "params": {"n": 1}}] * 2)
    first_job = selectors.job_list(app=app, filters=selectors.JobFilters(batch=batch.id))[-1]
    services.job_claim(job_id=first_job.id, worker="w")
    cancel = lambda: services.batch_cancel(app=app, batch_id=batch.id)  # noqa: E731
    [answer] = second_waits_for_first(cancel, cancel)
    assert answer == {"cancelled": 0, "stopping": 1}, answer
    kinds = [event.kind for event in selectors.batch_events(app=app, batch_id=batch.id)]
    assert kinds.count("cancel_requested") == 1, kinds
    [requested] = [e for e in selectors.batch_events(app=app, batch_id=batch.id) if e.kind == "cancel_requested"]
    assert requested.data == {"unfinished": 2}
    job_kinds = [event.kind for event in selectors.job_events(app=app, job_id=first_job.id)]
    assert job_kinds.count("cancel_requested") == 1, job_kinds


@pytest.mark.django_db(transaction=True)
def test_a_schedule_create_waits_for_one_in_flight_at_the_schedules_cap(settings):
    from jobs.exceptions import TooManySchedules

    settings.JOBS = {**settings.JOBS, "MAX_SCHEDULES_PER_APP": 1}
    app, _ = new_app()
    fields = {"job": {"type": "fibonacci", "params": {"n": 1}}, "every": 3600, "catch_up": "skip"}
    [answer] = second_waits_for_first(
        lambda: services.schedule_create(app=app, fields=fields),
        lambda: services.schedule_create(app=app, fields=fields),
    )
    assert isinstance(answer, TooManySchedules), answer


@pytest.mark.django_db(transaction=True)
def test_the_worker_defers_a_job_its_application_cannot_start_yet():
    app, _ = new_app()
    services.app_set_max_running(app_name=app.name, max_running=1)
    running, _ = services.job_create(app=app, type="fibonacci", params={"n": 1})
    waiting, _ = services.job_create(app=app, type="fibonacci", params={"n": 1})
    services.job_claim(job_id=running.id, worker="elsewhere")
    assert execute_job(str(waiting.id)) == Outcome.DEFERRED
    assert execute_job(str(running.id)) == Outcome.SKIPPED  # taken: skipped, not deferred
    assert execute_job(str(uuid.uuid4())) == Outcome.SKIPPED  # no such job: nothing to defer


def test_set_app_limits_command(app):
    out = io.StringIO()
    call_command("set_app_limits", app.name, "--max-running", "3", stdout=out)
    assert "may run at once: 3" in out.getvalue()
    call_command("set_app_limits", app.name, "--max-running", "default", stdout=out)
    assert "the default" in out.getvalue()
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="no application"):
        call_command("set_app_limits", "no-such-app", "--max-running", "1")


def test_a_job_refused_just_before_a_slot_freed_is_still_offered_again(app):
    """The claim was refused at the cap; a running job ends before the worker defers: the
    refused job still gets a new envelope (else it would wait for redelivery)."""
    services.app_set_max_running(app_name=app.name, max_running=1)
    first, _ = services.job_create(app=app, type="fibonacci", params={"n": 1})
    second, _ = services.job_create(app=app, type="fibonacci", params={"n": 1})
    running = services.job_claim(job_id=first.id, worker="w")
    assert services.job_claim(job_id=second.id, worker="w") is None
    services.job_succeed(job=running, result=1)  # the slot frees now
    assert services.job_defer(job_id=second.id)
