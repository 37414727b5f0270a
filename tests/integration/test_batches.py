"""Batches against the real PostgreSQL: all or nothing, every fault named by its index,
idempotency, the unfinished cap, the count that ends a batch exactly once (also when its
last two jobs end at the same moment in two workers), the batch's callback, cancel,
isolation between applications, and nothing deleted."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid

import psycopg2
import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from rest_framework.test import APIClient

from jobs import selectors, services
from jobs.domain import BatchEventKind
from jobs.runtime import callbacks
from jobs.services.callbacks import SIGNATURE_HEADER, verify
from tests.callback_receiver import Receiver
from tests.conftest import database_url
from tests.integration.conftest import PARK_CALLBACKS, new_app, park_committed


@pytest.fixture(autouse=True)
def earlier_callbacks_wait(request):
    """Callbacks committed before this test wait: what deliver_due counts is this test's (``park_committed``)."""
    park_committed(request, PARK_CALLBACKS)


def job_body(n: int = 10, **extra) -> dict:
    return {"type": "fibonacci", "params": {"n": n}, **extra}


def post_batch(api, body, **headers):
    return api.post("/batches", data=json.dumps(body), content_type="application/json", **headers)


def client(token: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


def counts(cursor, batch_id) -> dict[str, int]:
    """Rows about a batch in every table it writes, read through ``cursor``."""
    cursor.execute(
        """SELECT (SELECT count(*) FROM jobs_batch WHERE id = %(b)s),
                  (SELECT count(*) FROM jobs_job WHERE batch_id = %(b)s),
                  (SELECT count(*) FROM jobs_event e JOIN jobs_job j ON j.id = e.job_id WHERE j.batch_id = %(b)s),
                  (SELECT count(*) FROM django_q_ormq q JOIN jobs_job j ON j.envelope_id = q.id
                   WHERE j.batch_id = %(b)s),
                  (SELECT count(*) FROM jobs_batch_event WHERE batch_id = %(b)s)""",
        {"b": str(batch_id)},
    )
    return dict(zip(("batches", "jobs", "events", "envelopes", "batch_events"), cursor.fetchone(), strict=True))


@pytest.fixture
def allowed(settings):
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]


# -- create ----------------------------------------------------------------------------------
def test_a_batch_creates_every_job_with_its_envelope_and_events(api, raw):
    body = {"jobs": [job_body(i, metadata={"chunk": i}) for i in range(30)], "metadata": {"migration": "m1"}}
    response = post_batch(api, body)
    assert response.status_code == 201, response.content
    batch = response.json()
    assert response["Location"] == batch["url"] and batch["url"].endswith(f"/batches/{batch['id']}")
    assert batch["state"] == "active" and batch["total"] == 30 and batch["metadata"] == {"migration": "m1"}
    assert batch["counts"] == {
        "scheduled": 0,
        "queued": 30,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert batch["progress"] == {"finished": 0, "total": 30, "percent": 0.0}
    assert batch["finished_at"] is None and batch["cancel_requested"] is False
    assert len(batch["jobs"]["results"]) == 30 and batch["jobs"]["next"] is None
    assert {job["batch_id"] for job in batch["jobs"]["results"]} == {batch["id"]}
    # Newest first, in the order sent: created_at is the clock time row by row.
    assert [job["metadata"]["chunk"] for job in batch["jobs"]["results"]] == list(range(29, -1, -1))
    assert counts(raw, batch["id"]) == {"batches": 1, "jobs": 30, "events": 60, "envelopes": 30, "batch_events": 1}
    raw.execute(
        "SELECT array_agg(DISTINCT kind) FROM jobs_event e JOIN jobs_job j ON j.id = e.job_id WHERE j.batch_id = %s",
        [batch["id"]],
    )
    assert sorted(raw.fetchone()[0]) == ["created", "queued"]
    # The jobs are ordinary jobs: the job endpoints read them, GET /jobs?batch= lists them.
    one = batch["jobs"]["results"][0]
    assert api.get(f"/jobs/{one['id']}").json()["batch_id"] == batch["id"]
    listed = api.get(f"/jobs?batch={batch['id']}&limit=500").json()["results"]
    assert sorted(j["id"] for j in listed) == sorted(j["id"] for j in batch["jobs"]["results"])
    assert api.get(f"/jobs?batch={uuid.uuid4()}").json()["results"] == []
    history = api.get(batch["events_url"]).json()
    assert [(e["kind"], e["data"]) for e in history["events"]] == [("created", {"jobs": 30})]


def test_jobs_of_a_batch_keep_their_own_fields(api):
    body = {
        "jobs": [
            job_body(5, max_attempts=7, timeout=42, queue="default"),
            {"type": "countdown", "params": {"seconds": 1}, "run_at": "2099-01-01T00:00:00Z"},
        ]
    }
    response = post_batch(api, body)
    assert response.status_code == 400  # 2099 is past JOBS_MAX_SCHEDULE_DAYS
    assert [e["field"] for e in response.json()["errors"]] == ["jobs[1].run_at"]
    from datetime import UTC, datetime, timedelta

    body["jobs"][1]["run_at"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    batch = post_batch(api, body).json()
    jobs = {job["type"]: job for job in batch["jobs"]["results"]}
    assert jobs["fibonacci"]["max_attempts"] == 7 and jobs["fibonacci"]["timeout"] == 42
    assert jobs["countdown"]["status"] == "scheduled" and jobs["countdown"]["run_at"] is not None
    assert batch["counts"]["scheduled"] == 1 and batch["counts"]["queued"] == 1


def test_every_fault_of_every_item_is_named_by_its_index_and_nothing_is_stored(api, raw):
    raw.execute("SELECT (SELECT count(*) FROM jobs_job), (SELECT count(*) FROM jobs_batch)")
    before = raw.fetchone()
    items = [job_body(i) for i in range(20)]
    items[3] = {"type": "no-such-type", "params": {}}
    items[5] = "not an object"
    items[9] = {**job_body(1), "colour": "red"}
    items[17] = job_body(-1)
    body = {"jobs": items, "metadata": [1], "callback_url": "http://10.0.0.1/x", "extra": 1}
    response = post_batch(api, body, HTTP_IDEMPOTENCY_KEY="bad key")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == sorted(
        [
            "Idempotency-Key",
            "extra",
            "jobs[3].type",
            "jobs[5]",
            "jobs[9].colour",
            "jobs[17].params.n",
            "metadata",
            "callback_url",
        ]
    )
    pointers = {e["field"]: e["pointer"] for e in response.json()["errors"]}
    assert pointers["jobs[17].params.n"] == "#/jobs/17/params/n"
    raw.execute("SELECT (SELECT count(*) FROM jobs_job), (SELECT count(*) FROM jobs_batch)")
    assert raw.fetchone() == before


@pytest.mark.parametrize(
    "jobs, detail",
    [(None, "Give a list"), ([], "Give a list"), ({"type": "pi"}, "Give a list"), ("x", "Give a list")],
)
def test_jobs_must_be_a_non_empty_list(api, jobs, detail):
    response = post_batch(api, {} if jobs is None else {"jobs": jobs})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "jobs" and error["detail"].startswith(detail)


def test_a_batch_over_JOBS_BATCH_MAX_is_400(api, settings, raw):
    settings.JOBS = {**settings.JOBS, "BATCH_MAX": 5}
    response = post_batch(api, {"jobs": [job_body()] * 6})
    assert response.status_code == 400
    assert response.json()["errors"][0]["detail"].startswith("At most 5 jobs per batch (JOBS_BATCH_MAX)")
    assert post_batch(api, {"jobs": [job_body()] * 5}).status_code == 201


def test_the_errors_of_a_thousand_faulty_items_are_bounded(api, settings):
    listed = settings.JOBS.get("ERRORS_LISTED_MAX", 50)
    response = post_batch(api, {"jobs": [{"type": "pi", "params": {"digits": -1}, "x": 1}] * 1000})
    assert response.status_code == 400
    body = response.json()
    assert len(body["errors"]) == listed
    assert body["errors_truncated"] == 2000 - listed
    assert body["errors"][0]["field"] == "jobs[0].x" and body["errors"][-1]["field"].startswith("jobs[24].")
    assert len(response.content) < 20_000


def test_a_non_object_body_is_400(api):
    response = api.post("/batches", data=json.dumps([job_body()]), content_type="application/json")
    assert response.status_code == 400


# -- all or nothing ------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_statement_that_fails_on_its_last_item_stores_nothing_seen_from_another_connection(monkeypatch):
    """The batch, its jobs, envelopes and events are one statement: make the database refuse
    the 300th job (a queue name its CHECK refuses, let past the validation on purpose) and
    another connection sees none of the 299 others."""
    from jobs.services import batches

    app, _ = new_app()
    real = batches._batch_insert
    other = psycopg2.connect(database_url(connection.settings_dict))
    try:
        with other.cursor() as cur:
            cur.execute(
                "SELECT (SELECT count(*) FROM jobs_job), (SELECT count(*) FROM django_q_ormq), "
                "(SELECT count(*) FROM jobs_event), (SELECT count(*) FROM jobs_batch)"
            )
            before = cur.fetchone()

        def last_one_refused(app, request, key, fingerprint):
            refused = dataclasses.replace(request.jobs[-1], queue="NOT A QUEUE!")
            return real(app, dataclasses.replace(request, jobs=(*request.jobs[:-1], refused)), key, fingerprint)

        monkeypatch.setattr(batches, "_batch_insert", last_one_refused)
        with pytest.raises(IntegrityError, match="queue"):
            services.batch_create(app=app, jobs=[job_body(i) for i in range(300)])
        with other.cursor() as cur:
            cur.execute(
                "SELECT (SELECT count(*) FROM jobs_job), (SELECT count(*) FROM django_q_ormq), "
                "(SELECT count(*) FROM jobs_event), (SELECT count(*) FROM jobs_batch)"
            )
            assert cur.fetchone() == before
        other.rollback()

        monkeypatch.setattr(batches, "_batch_insert", real)
        batch, _ = services.batch_create(app=app, jobs=[job_body(i) for i in range(300)])
        with other.cursor() as cur:
            assert counts(cur, batch.id) == {
                "batches": 1,
                "jobs": 300,
                "events": 600,
                "envelopes": 300,
                "batch_events": 1,
            }
    finally:
        other.close()


def test_a_batch_is_one_round_trip(app, django_assert_max_num_queries):
    """The 500 jobs, their envelopes and events: one statement, not 500."""
    with django_assert_max_num_queries(1):
        services.batch_create(app=app, jobs=[job_body(i) for i in range(500)])


# -- idempotency -------------------------------------------------------------------------------
def test_the_idempotency_key_covers_the_whole_batch(api, raw):
    body = {"jobs": [job_body(i) for i in range(4)], "metadata": {"run": 1}}
    first = post_batch(api, body, HTTP_IDEMPOTENCY_KEY="batch-1")
    again = post_batch(api, body, HTTP_IDEMPOTENCY_KEY="batch-1")
    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in first and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and again["Location"] == first["Location"]
    raw.execute("SELECT count(*) FROM jobs_job WHERE batch_id = %s", [first.json()["id"]])
    assert raw.fetchone()[0] == 4
    other = post_batch(api, {**body, "jobs": [job_body(i) for i in range(5)]}, HTTP_IDEMPOTENCY_KEY="batch-1")
    assert other.status_code == 422
    assert other.json()["batch_id"] == first.json()["id"]
    assert post_batch(api, {**body, "metadata": {"run": 2}}, HTTP_IDEMPOTENCY_KEY="batch-1").status_code == 422
    # The key is the batch's: a job created with the same key is another matter.
    job = api.post(
        "/jobs", data=json.dumps(job_body()), content_type="application/json", HTTP_IDEMPOTENCY_KEY="batch-1"
    )
    assert job.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_of_one_key_create_one_batch():
    app, _ = new_app()
    results: list = []

    def create() -> None:
        try:
            results.append(services.batch_create(app=app, jobs=[job_body(i) for i in range(50)], idempotency_key="k"))
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({batch.id for batch, _ in results}) == 1 and len(results) == 4
    assert sorted(created for _, created in results) == [False, False, False, True]
    [batch] = selectors.batch_list(app=app)
    assert batch.total == 50
    assert len(selectors.job_list(app=app, limit=500)) == 50


# -- limits ---------------------------------------------------------------------------------
def test_a_batch_that_would_pass_the_unfinished_cap_is_refused_whole(api, settings, raw, app):
    settings.JOBS = {**settings.JOBS, "MAX_UNFINISHED_PER_APP": 5}
    for i in range(3):
        services.job_create(app=app, type="fibonacci", params={"n": i})
    response = post_batch(api, {"jobs": [job_body(i) for i in range(3)]})
    assert response.status_code == 429
    assert response["Retry-After"]
    assert response.json()["type"] == "urn:jobplatform:problem:too-many-unfinished-jobs"
    raw.execute("SELECT count(*) FROM jobs_job WHERE app_id = %s", [app.id])
    assert raw.fetchone()[0] == 3
    raw.execute("SELECT count(*) FROM jobs_batch WHERE app_id = %s", [app.id])
    assert raw.fetchone()[0] == 0
    assert post_batch(api, {"jobs": [job_body(i) for i in range(2)]}).status_code == 201
    # More jobs than the cap itself can never be accepted: a 400, not a 429 to retry.
    too_big = post_batch(api, {"jobs": [job_body(i) for i in range(6)]})
    assert too_big.status_code == 400 and too_big.json()["errors"][0]["field"] == "jobs"


def test_a_batch_counts_one_request_per_job_against_the_token_rate_limit(api, app, raw, settings):
    settings.JOBS = {**settings.JOBS, "RATE_LIMIT_REQUESTS": 10}
    first = post_batch(api, {"jobs": [job_body(i) for i in range(6)]})
    assert first.status_code == 201
    assert first["RateLimit"] == '"token";r=4;t=60'
    # Room for 4 (its own request counted): a batch of 5 is refused whole, and only its own
    # request is counted, not its jobs.
    refused = post_batch(api, {"jobs": [job_body(i) for i in range(5)]})
    assert refused.status_code == 429 and refused["Retry-After"] == "60"
    problem = refused.json()
    assert problem["type"] == "urn:jobplatform:problem:rate-limited" and problem["retry_after"] == 60
    assert "needs 5, and a request in this window may now create at most 3;" in problem["detail"]
    assert refused["RateLimit"] == '"token";r=3;t=60'
    raw.execute("SELECT count(*) FROM jobs_job WHERE app_id = %s", [app.id])
    assert raw.fetchone()[0] == 6
    raw.execute("SELECT count(*) FROM jobs_batch WHERE app_id = %s", [app.id])
    assert raw.fetchone()[0] == 1
    last = post_batch(api, {"jobs": [job_body(i) for i in range(3)]})
    assert last.status_code == 201 and last["RateLimit"] == '"token";r=0;t=60'
    assert post_batch(api, {"jobs": [job_body()]}).status_code == 429


def test_a_batch_larger_than_the_rate_limit_is_a_400_and_a_replay_counts_once(api, settings):
    settings.JOBS = {**settings.JOBS, "RATE_LIMIT_REQUESTS": 5}
    too_big = post_batch(api, {"jobs": [job_body(i) for i in range(6)]})
    assert too_big.status_code == 400
    assert too_big.json()["errors"] == [
        {
            "field": "jobs",
            "pointer": "#/jobs",
            "detail": "A token may make 5 requests per 60 s (JOBS_RATE_LIMIT_REQUESTS) and a batch counts one per "
            "job: send at most 5 jobs per batch; this one has 6.",
        }
    ]
    body = {"jobs": [job_body(i) for i in range(3)]}
    assert post_batch(api, body, HTTP_IDEMPOTENCY_KEY="rated").status_code == 201  # 1 + 1 + 2
    again = post_batch(api, body, HTTP_IDEMPOTENCY_KEY="rated")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again["RateLimit"] == '"token";r=0;t=60'  # the replay created nothing: one request
    assert post_batch(api, {"jobs": [job_body()]}).status_code == 429


def test_jobs_of_a_batch_are_claimed_under_the_running_cap(app, settings):
    settings.JOBS = {**settings.JOBS, "MAX_RUNNING_PER_APP": 2}
    batch, _ = services.batch_create(app=app, jobs=[job_body(i) for i in range(4)])
    jobs = selectors.job_list(app=app, filters=selectors.JobFilters(batch=batch.id))
    claimed = [services.job_claim(job_id=job.id, worker=f"w{i}") for i, job in enumerate(jobs)]
    assert [job is not None for job in claimed] == [True, True, False, False]


# -- ending, exactly once --------------------------------------------------------------------
def finish_all(app, batch_id, status="succeed"):
    for job in selectors.job_list(app=app, filters=selectors.JobFilters(batch=batch_id), limit=500):
        running = services.job_claim(job_id=job.id, worker="w")
        if status == "succeed":
            services.job_succeed(job=running, result={"n": job.params["n"]})
        else:
            services.job_fail(job=running, error=RuntimeError("no"), retryable=False)


def test_the_last_job_to_end_finishes_the_batch_and_queues_its_callback_once(api, app, allowed, raw):
    batch = post_batch(api, {"jobs": [job_body(i) for i in range(3)], "callback_url": "http://127.0.0.1:9/b"}).json()
    jobs = selectors.job_list(app=app, filters=selectors.JobFilters(batch=uuid.UUID(batch["id"])))
    first, second, third = (services.job_claim(job_id=job.id, worker="w") for job in jobs)
    services.job_succeed(job=first, result=1)
    services.job_fail(job=second, error=RuntimeError("boom"), retryable=False)
    middle = api.get(batch["url"]).json()
    assert middle["state"] == "active" and middle["progress"]["finished"] == 2
    assert middle["counts"]["succeeded"] == 1 and middle["counts"]["failed"] == 1 and middle["counts"]["running"] == 1
    raw.execute("SELECT count(*) FROM jobs_callback WHERE batch_id = %s", [batch["id"]])
    assert raw.fetchone()[0] == 0
    services.job_progress(job=third, percent=40.0, message="", milestone=False)
    assert api.get(batch["url"]).json()["progress"]["percent"] == pytest.approx((100 + 100 + 40) / 3, abs=0.01)
    services.job_succeed(job=third, result=3)
    done = api.get(batch["url"]).json()
    assert done["state"] == "finished" and done["finished_at"] is not None
    assert done["progress"] == {"finished": 3, "total": 3, "percent": 100.0}
    raw.execute("SELECT job_id, url FROM jobs_callback WHERE batch_id = %s", [batch["id"]])
    assert raw.fetchall() == [(None, "http://127.0.0.1:9/b")]
    kinds = [e["kind"] for e in api.get(batch["events_url"]).json()["events"]]
    assert kinds == ["created", "finished"]


def test_cancelling_the_last_waiting_job_of_a_batch_by_itself_finishes_the_batch(api, app):
    batch = post_batch(api, {"jobs": [job_body(1), job_body(2)]}).json()
    first, second = selectors.job_list(app=app, filters=selectors.JobFilters(batch=uuid.UUID(batch["id"])))
    services.job_succeed(job=services.job_claim(job_id=first.id, worker="w"), result=None)
    assert api.post(f"/jobs/{second.id}/cancel").status_code == 200
    done = api.get(batch["url"]).json()
    assert done["state"] == "finished" and done["counts"]["cancelled"] == 1 and done["counts"]["succeeded"] == 1


def test_a_rescued_job_that_fails_for_good_counts_down_too(app, raw):
    batch, _ = services.batch_create(app=app, jobs=[job_body(1, max_attempts=1)])
    [job] = selectors.job_list(app=app, filters=selectors.JobFilters(batch=batch.id))
    services.job_claim(job_id=job.id, worker="w")
    raw.execute("UPDATE jobs_job SET lease_expires_at = now() - interval '1 second' WHERE id = %s", [job.id])
    services.jobs_rescue_expired(limit=10)
    assert selectors.batch_get(app=app, batch_id=batch.id).state == "finished"


@pytest.mark.django_db(transaction=True)
def test_the_last_two_jobs_ending_at_once_in_two_workers_queue_exactly_one_callback(settings):
    """Two workers finish the batch's last two jobs at the same moment: the first holds its
    transaction open after its statement, the second's statement waits on the batch row,
    then goes on with the count the first committed. One callback, one 'finished'."""
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    app, _ = new_app()
    batch, _ = services.batch_create(app=app, jobs=[job_body(i) for i in range(2)], callback_url="http://127.0.0.1:9/")
    running = [
        services.job_claim(job_id=job.id, worker=f"w{i}")
        for i, job in enumerate(selectors.job_list(app=app, filters=selectors.JobFilters(batch=batch.id)))
    ]
    first_done, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def worker(job, hold: bool) -> None:
        try:
            with transaction.atomic():
                services.job_succeed(job=job, result=None)
                if hold:
                    first_done.set()
                    assert release.wait(30)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=worker, args=(running[0], True))
    holder.start()
    assert first_done.wait(30)
    waiter = threading.Thread(target=worker, args=(running[1], False))
    waiter.start()
    waiting = 0
    for _ in range(200):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            waiting = cursor.fetchone()[0]
        if waiting:
            break
        threading.Event().wait(0.05)
    assert waiting == 1  # the second finish is blocked on the batch row
    release.set()
    holder.join(30)
    waiter.join(30)
    assert errors == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM jobs_callback WHERE batch_id = %s", [batch.id])
        assert cursor.fetchone()[0] == 1
        cursor.execute("SELECT kind FROM jobs_batch_event WHERE batch_id = %s ORDER BY id", [batch.id])
        assert [row[0] for row in cursor.fetchall()] == ["created", "finished"]
        cursor.execute("SELECT unfinished, finished_at IS NOT NULL FROM jobs_batch WHERE id = %s", [batch.id])
        assert cursor.fetchone() == (0, True)


@pytest.mark.django_db(transaction=True)
def test_many_batches_whose_jobs_all_end_at_once_each_end_exactly_once(settings):
    """Twenty batches of four jobs; four threads each end one job of every batch, all
    starting together: every batch ends once, with one callback and one 'finished'."""
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    app, _ = new_app()
    batches = [
        services.batch_create(app=app, jobs=[job_body(i) for i in range(4)], callback_url="http://127.0.0.1:9/")[0]
        for _ in range(20)
    ]
    lanes: list[list] = [[], [], [], []]
    for batch in batches:
        jobs = selectors.job_list(app=app, filters=selectors.JobFilters(batch=batch.id))
        for lane, job in zip(lanes, jobs, strict=True):
            lane.append(services.job_claim(job_id=job.id, worker="w"))
    start = threading.Barrier(len(lanes))
    errors: list[BaseException] = []

    def worker(lane) -> None:
        try:
            start.wait(30)
            for job in lane:
                services.job_succeed(job=job, result=None)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(lane,)) for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with connection.cursor() as cursor:
        ids = [str(batch.id) for batch in batches]
        cursor.execute(
            "SELECT count(*), count(DISTINCT batch_id) FROM jobs_callback WHERE batch_id = ANY(%s::uuid[])", [ids]
        )
        assert cursor.fetchone() == (20, 20)
        cursor.execute(
            "SELECT count(*) FROM jobs_batch_event WHERE kind = 'finished' AND batch_id = ANY(%s::uuid[])", [ids]
        )
        assert cursor.fetchone()[0] == 20
        cursor.execute("SELECT count(*) FROM jobs_batch WHERE unfinished = 0 AND id = ANY(%s::uuid[])", [ids])
        assert cursor.fetchone()[0] == 20


def test_the_batch_callback_is_the_signed_batch_resource_recorded_in_its_history(api, app, allowed):
    secret = services.app_rotate_callback_secret(app_name=app.name)
    with Receiver(200) as receiver:
        body = {"jobs": [job_body(i, callback_url=receiver.url) for i in range(2)], "callback_url": receiver.url}
        batch = post_batch(api, {**body, "metadata": {"m": 1}}).json()
        finish_all(app, uuid.UUID(batch["id"]))
        assert callbacks.deliver_due(limit=10) == 3  # each job's own, and the batch's
        assert callbacks.deliver_due(limit=10) == 0
    bodies = [json.loads(delivery["body"]) for delivery in receiver.received]
    [sent] = [b for b in bodies if b["id"] == batch["id"]]
    delivery = next(d for d in receiver.received if json.loads(d["body"])["id"] == batch["id"])
    assert verify(secret, delivery["headers"][SIGNATURE_HEADER], delivery["body"])
    assert sent["state"] == "finished" and sent["counts"]["succeeded"] == 2 and sent["metadata"] == {"m": 1}
    assert sent["progress"] == {"finished": 2, "total": 2, "percent": 100.0}
    assert sent["jobs_url"].endswith(f"/jobs?batch={batch['id']}") and "jobs" not in sent
    events = api.get(batch["events_url"]).json()["events"]
    assert [e["kind"] for e in events] == ["created", "finished", "callback"]
    assert events[-1]["data"] == {"url": receiver.url, "delivery": 1, "status": 200, "delivered": True}
    assert "attempt" not in events[-1]


def test_a_failing_batch_callback_is_retried_and_recorded(api, app, allowed, raw):
    with Receiver(500) as receiver:
        batch = post_batch(api, {"jobs": [job_body()], "callback_url": receiver.url}).json()
        finish_all(app, uuid.UUID(batch["id"]), status="fail")
        assert callbacks.deliver_due(limit=10) == 1
    events = api.get(batch["events_url"]).json()["events"]
    assert events[-1]["kind"] == "callback" and events[-1]["data"]["delivered"] is False
    assert events[-1]["data"]["status"] == 500 and "next_attempt_at" in events[-1]["data"]
    raw.execute("SELECT attempts, delivered_at FROM jobs_callback WHERE batch_id = %s", [batch["id"]])
    assert raw.fetchone() == (1, None)


# -- cancel --------------------------------------------------------------------------------------
def test_cancel_stops_every_unfinished_job_of_the_batch(api, app, allowed):
    batch = post_batch(api, {"jobs": [job_body(i) for i in range(4)], "callback_url": "http://127.0.0.1:9/"}).json()
    jobs = selectors.job_list(app=app, filters=selectors.JobFilters(batch=uuid.UUID(batch["id"])))
    done = services.job_claim(job_id=jobs[0].id, worker="w")
    services.job_succeed(job=done, result=None)
    running = services.job_claim(job_id=jobs[1].id, worker="w")
    response = api.post(f"/batches/{batch['id']}/cancel")
    assert response.status_code == 202
    body = response.json()
    assert body["cancel_requested"] is True and body["state"] == "active"
    assert body["counts"]["cancelled"] == 2 and body["counts"]["running"] == 1 and body["counts"]["succeeded"] == 1
    assert api.get(f"/jobs/{running.id}").json()["cancel_requested"] is True
    # Asked again while the job still runs: the same answer, and nothing recorded twice.
    repeat = api.post(f"/batches/{batch['id']}/cancel")
    assert repeat.status_code == 202 and repeat.json()["counts"]["running"] == 1
    job_kinds = [e["kind"] for e in api.get(f"/jobs/{running.id}/events").json()["events"]]
    assert job_kinds.count("cancel_requested") == 1, job_kinds
    assert api.post(f"/jobs/{running.id}/cancel").status_code == 202
    job_kinds = [e["kind"] for e in api.get(f"/jobs/{running.id}/events").json()["events"]]
    assert job_kinds.count("cancel_requested") == 1, job_kinds
    # The running one stops at its next check: the batch ends then, and calls back once.
    services.job_cancelled(job=running)
    ended = api.get(batch["url"]).json()
    assert ended["state"] == "finished" and ended["counts"]["cancelled"] == 3
    kinds = [e["kind"] for e in api.get(batch["events_url"]).json()["events"]]
    assert kinds == ["created", "cancel_requested", "finished"]
    again = api.post(f"/batches/{batch['id']}/cancel")
    assert again.status_code == 409 and again["Content-Type"] == "application/problem+json"
    assert again.json()["type"] == "urn:jobplatform:problem:conflict"


def test_cancelling_a_batch_of_waiting_jobs_finishes_it_at_once(api, allowed, raw):
    batch = post_batch(api, {"jobs": [job_body(i) for i in range(5)], "callback_url": "http://127.0.0.1:9/"}).json()
    response = api.post(f"/batches/{batch['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["state"] == "finished" and response.json()["counts"]["cancelled"] == 5
    raw.execute("SELECT count(*) FROM jobs_callback WHERE batch_id = %s", [batch["id"]])
    assert raw.fetchone()[0] == 1
    raw.execute(
        "SELECT count(*) FROM jobs_event e JOIN jobs_job j ON j.id = e.job_id "
        "WHERE j.batch_id = %s AND kind = 'cancelled'",
        [batch["id"]],
    )
    assert raw.fetchone()[0] == 5


@pytest.mark.parametrize("batch_id", ["not-a-uuid", str(uuid.uuid4())], ids=["not-a-uuid", "unknown-uuid"])
def test_cancelling_an_unknown_batch_is_404(api, batch_id):
    assert api.post(f"/batches/{batch_id}/cancel").status_code == 404


# -- isolation, scopes -----------------------------------------------------------------------------
def test_another_applications_batch_is_404_and_an_admin_reads_any(api):
    batch = post_batch(api, {"jobs": [job_body()]}).json()
    _, other_token = new_app()
    other = client(other_token)
    for path in (f"/batches/{batch['id']}", f"/batches/{batch['id']}/events"):
        assert other.get(path).status_code == 404
    assert other.post(f"/batches/{batch['id']}/cancel").status_code == 404
    assert other.get("/batches").json()["results"] == []
    assert other.get(f"/jobs?batch={batch['id']}").json()["results"] == []
    admin_token, _ = services.token_issue(app_name=f"ops-{uuid.uuid4().hex[:8]}", scopes=["admin", "jobs:read"])
    admin = client(admin_token)
    assert admin.get(f"/batches/{batch['id']}").json()["id"] == batch["id"]
    assert admin.get(f"/batches/{batch['id']}/events").status_code == 200
    app_name = selectors.batch_get_any(batch_id=uuid.UUID(batch["id"])).app_name
    assert [b["id"] for b in admin.get(f"/batches?app={app_name}").json()["results"]] == [batch["id"]]
    assert api.get(f"/batches?app={app_name}").status_code == 403  # choosing whose: admin only


def test_scopes_apply_to_batches_as_to_jobs(db):
    app_name = f"r-{uuid.uuid4().hex[:8]}"
    reader, _ = services.token_issue(app_name=app_name, scopes=["jobs:read"])
    writer, _ = services.token_issue(app_name=app_name, scopes=["jobs:write"])
    refused = post_batch(client(reader), {"jobs": [job_body()]})
    assert refused.status_code == 403 and refused.json()["required_scope"] == "jobs:write"
    created = post_batch(client(writer), {"jobs": [job_body()]})
    assert created.status_code == 201
    assert client(writer).get("/batches").status_code == 403
    assert client(reader).get("/batches").status_code == 200
    assert client(reader).post(f"/batches/{created.json()['id']}/cancel").status_code == 403
    assert APIClient().get("/batches").status_code == 401


def test_batches_are_listed_newest_first_in_keyset_pages(api):
    made = [post_batch(api, {"jobs": [job_body(i)]}).json()["id"] for i in range(5)]
    seen, url = [], "/batches?limit=2"
    while url:
        page = api.get(url)
        assert page.status_code == 200
        seen += [b["id"] for b in page.json()["results"]]
        assert all("jobs" not in b and b["counts"]["queued"] == 1 for b in page.json()["results"])
        url = page.json()["next"]
        if url:
            assert page["Link"] == f'<{url}>; rel="next"'
    assert seen == made[::-1]


def test_a_batchs_jobs_are_paged_with_the_keyset_cursor(api):
    batch = post_batch(api, {"jobs": [job_body(i) for i in range(7)]}).json()
    seen, url = [], f"{batch['url']}?limit=3"
    while url:
        page = api.get(url).json()
        assert page["id"] == batch["id"] and page["total"] == 7
        seen += [job["id"] for job in page["jobs"]["results"]]
        url = page["jobs"]["next"]
    assert len(seen) == len(set(seen)) == 7
    assert sorted(seen) == sorted(job["id"] for job in batch["jobs"]["results"])


@pytest.mark.parametrize("query", ["limit=0", "cursor=nope", "colour=red", "limit=abc"])
def test_bad_page_parameters_are_400(api, query):
    batch = post_batch(api, {"jobs": [job_body()]}).json()
    assert api.get(f"{batch['url']}?{query}").status_code == 400
    assert api.get(f"/batches?{query}").status_code == 400


def test_a_malformed_batch_filter_on_the_job_list_is_400(api):
    response = api.get("/jobs?batch=42")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "batch"


@pytest.mark.parametrize(
    "path",
    ["/batches/nope", f"/batches/{uuid.uuid4()}", f"/batches/{uuid.uuid4()}/events"],
    ids=["not-a-uuid", "unknown", "unknown-events"],
)
def test_unknown_batches_are_404_problems(api, path):
    response = api.get(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"


# -- nothing deleted -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM jobs_batch",
        "TRUNCATE jobs_batch CASCADE",
        "DELETE FROM jobs_batch_event",
        "TRUNCATE jobs_batch_event",
        "UPDATE jobs_batch_event SET kind = 'created'",
    ],
)
def test_batches_and_their_history_are_never_deleted_or_rewritten(app, raw, statement):
    services.batch_create(app=app, jobs=[job_body()])
    with pytest.raises(DatabaseError, match="jobplatform: "), transaction.atomic():
        raw.execute(statement)


def test_the_database_constraints_keep_a_batchs_count_honest(app, raw):
    batch, _ = services.batch_create(app=app, jobs=[job_body()])
    for statement in (
        "UPDATE jobs_batch SET unfinished = 0 WHERE id = %s",  # no finished_at with it
        "UPDATE jobs_batch SET unfinished = 2 WHERE id = %s",  # more than its total
        "INSERT INTO jobs_callback (url) SELECT 'http://x/' FROM jobs_batch WHERE id = %s",  # neither job nor batch
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            raw.execute(statement, [batch.id])


def test_the_database_knows_exactly_the_batch_event_kinds_the_code_knows(raw):
    import re

    raw.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'jobs_batch_event_kind_known'")
    [definition] = raw.fetchone()
    assert sorted(re.findall(r"'([a-z_]+)'", definition)) == sorted(kind.value for kind in BatchEventKind)


# -- the operator's views ----------------------------------------------------------------------
def test_metrics_count_batches_by_state_as_the_database_does(app, raw):
    from django.test import Client
    from prometheus_client.parser import text_string_to_metric_families

    active = services.batch_create(app=app, jobs=[job_body(i) for i in range(3)])[0]
    ended = services.batch_create(app=app, jobs=[job_body(i) for i in range(2)])[0]
    services.batch_cancel(app=app, batch_id=ended.id)
    response = Client().get("/metrics")
    assert response.status_code == 200
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }
    raw.execute(
        "SELECT count(*) FILTER (WHERE finished_at IS NULL), count(*) FILTER (WHERE finished_at IS NOT NULL), "
        "COALESCE(sum(unfinished), 0) FROM jobs_batch"
    )
    active_n, finished_n, unfinished = raw.fetchone()
    assert active_n >= 1 and finished_n >= 1 and unfinished >= active.total
    assert samples[("jobplatform_batches", (("state", "active"),))] == active_n
    assert samples[("jobplatform_batches", (("state", "finished"),))] == finished_n
    assert samples[("jobplatform_batch_jobs_unfinished", ())] == unfinished


def test_jobs_top_shows_a_line_per_active_batch(app):
    import io

    from django.core.management import call_command

    active = services.batch_create(app=app, jobs=[job_body(i) for i in range(4)])[0]
    ended = services.batch_create(app=app, jobs=[job_body(1)])[0]
    services.batch_cancel(app=app, batch_id=ended.id)
    first = selectors.job_list(app=app, filters=selectors.JobFilters(batch=active.id))[0]
    services.job_succeed(job=services.job_claim(job_id=first.id, worker="w"), result=None)
    out = io.StringIO()
    call_command("jobs_top", "--once", stdout=out)
    screen = out.getvalue()
    [line] = [line for line in screen.splitlines() if str(active.id) in line]
    assert app.name[:16] in line and "[#####---------------]  25.0%" in line
    assert "1/4" in line and line.endswith("3 queued, 1 succeeded")
    assert str(ended.id) not in screen
    assert "active batches: " in screen


@pytest.mark.parametrize(
    ("query", "params", "index"),
    [
        ("batch_get", {"id": uuid.uuid4(), "app_id": uuid.uuid4()}, "jobs_job_batch"),
        ("batch_active", {"limit": 10}, "jobs_batch_active"),
        (
            "batch_list",
            {"app_id": uuid.uuid4(), "app_name": None, "before_created_at": None, "before_id": None, "limit": 51},
            "jobs_batch_app_created",
        ),
    ],
)
def test_batch_queries_read_through_their_indexes(raw, query, params, index):
    """With sequential scans priced out, each plan reads through its index: a batch's jobs
    through jobs_job_batch (never the whole jobs table), the active batches through their
    partial index, a page of batches through (app_id, created_at, id)."""
    from jobs import db

    raw.execute("SET LOCAL enable_seqscan = off")
    raw.execute("EXPLAIN " + db.queries[query], params)
    plan = "\n".join(row[0] for row in raw.fetchall())
    assert index in plan, plan
    assert "Seq Scan on jobs_job " not in plan, plan


def test_the_job_list_of_one_batch_reads_its_jobs_through_jobs_job_batch(app, raw):
    """GET /jobs?batch=: with 5,000 other jobs of the same application, the plan walks the
    batch's own index entries, newest first, with no sort."""
    from jobs import db

    raw.execute(
        "INSERT INTO jobs_job (id, app_id, type, params, status, max_attempts, timeout_seconds, created_at) "
        "SELECT gen_random_uuid(), %s, 'fibonacci', '{}'::jsonb, 'queued', 3, 60, now() - make_interval(secs => i) "
        "FROM generate_series(1, 5000) AS i",
        [app.id],
    )
    batch, _ = services.batch_create(app=app, jobs=[job_body(i) for i in range(20)])
    raw.execute("ANALYZE jobs_job")
    params = selectors.JobFilters(batch=batch.id).query_params(before=None, limit=51)
    raw.execute("EXPLAIN " + db.queries["job_list"], {**params, "app_id": app.id, "app_name": None})
    plan = "\n".join(row[0] for row in raw.fetchall())
    assert "jobs_job_batch" in plan and "Sort" not in plan, plan


def test_post_batches_never_500(api):
    """Batches of the fuzz tests' job bodies (three fifths valid with hostile metadata, a
    fifth nearly valid, a fifth anything), with hostile batch metadata: a 201 with every
    job stored, or a 400 naming fields, never a 500."""
    from hypothesis import given
    from hypothesis import strategies as st

    from tests.integration.test_fuzz import EXAMPLES, FUZZ, as_json_numbers, bodies, json_values, reach, storable_values

    reached = reach("POST /batches bodies")
    batch_metadata = st.dictionaries(st.text(max_size=10), storable_values, max_size=3) | json_values

    @FUZZ
    @given(items=st.lists(bodies, min_size=1, max_size=6), metadata=batch_metadata)
    def check(items, metadata):
        response = post_batch(api, {"jobs": items, "metadata": metadata})
        assert response.status_code in (201, 400), (response.status_code, response.content)
        if response.status_code == 400:
            assert response["Content-Type"] == "application/problem+json"
            problem = response.json()
            assert problem.get("errors") or problem["detail"].startswith("JSON parse error")
            fields = [e["field"] for e in problem.get("errors") or []]
            reached["400 naming an item" if any(f.startswith("jobs[") for f in fields) else "400 otherwise"] += 1
        else:
            batch = response.json()
            assert batch["total"] == len(items) == len(batch["jobs"]["results"])
            sent = {} if metadata is None else metadata  # null: no metadata
            assert as_json_numbers(batch["metadata"]) == as_json_numbers(sent)
            reached["created (stored)"] += 1

    check()
    assert sum(reached.values()) >= EXAMPLES
    assert reached["created (stored)"] >= EXAMPLES * 0.05 and reached["400 naming an item"] >= EXAMPLES * 0.2, reached


def test_a_page_of_batches_holds_at_most_a_hundred(api):
    """Each listed batch comes with its jobs counted per status: a page of 500 batches of
    1,000 jobs would count half a million rows, so the page is bounded at 100."""
    from jobs.api.serializers import BATCH_PAGE_MAX

    assert BATCH_PAGE_MAX == 100
    assert api.get(f"/batches?limit={BATCH_PAGE_MAX}").status_code == 200
    response = api.get(f"/batches?limit={BATCH_PAGE_MAX + 1}")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "limit"
    assert "100" in response.json()["errors"][0]["detail"]
