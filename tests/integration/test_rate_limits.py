"""Rate limits on the real database: 429 after N in a window, the headers, failed
authentications per address (API and log-in form), the reset after the window.

Each test runs in one transaction, where now() stands still: windows are moved by SQL.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.integration.conftest import new_app

PROBLEM = "application/problem+json"
ADDRESS = "203.0.113.7"


@pytest.fixture
def limits(settings):
    def set_limits(*, requests: int = 0, failed: int = 0, window: int = 60) -> None:
        settings.JOBS = {
            **settings.JOBS,
            # A token this process verified moments ago is served from its cache, blocked
            # address or not (docs/api.md, "Authentication"); these tests look at the database path.
            "TOKEN_CACHE_SECONDS": 0,
            "RATE_LIMIT_REQUESTS": requests,
            "RATE_LIMIT_FAILED_AUTH": failed,
            "RATE_LIMIT_WINDOW": window,
        }

    return set_limits


def token_client(token: str, address: str = ADDRESS) -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def end_windows(raw, key_like: str = "%") -> None:
    """Move every matching window's start back past its end (as if its time had passed)."""
    raw.execute("UPDATE jobs_rate SET window_start = window_start - interval '1 hour' WHERE key LIKE %s", [key_like])


def assert_429(response, retry_after_at_most: int = 60) -> None:
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:jobplatform:problem:rate-limited" and body["status"] == 429
    assert 1 <= int(response["Retry-After"]) <= retry_after_at_most
    assert body["retry_after"] == int(response["Retry-After"])


def test_token_limit_429_after_n_requests_with_headers(db, limits):
    limits(requests=3, window=60)
    _, token = new_app()
    client = token_client(token)
    for remaining in (2, 1, 0):
        response = client.get("/jobs")
        assert response.status_code == 200
        assert response["RateLimit-Policy"] == '"token";q=3;w=60'
        assert response["RateLimit"] == f'"token";r={remaining};t=60'
    refused = client.get("/jobs")
    assert_429(refused)
    assert refused["RateLimit"] == '"token";r=0;t=60' and refused["Retry-After"] == "60"
    assert "3 requests in 60 s" in refused.json()["detail"]
    # Writes count against the same token, and another token has its own window.
    create = client.post(
        "/jobs", data=json.dumps({"type": "fibonacci", "params": {"n": 1}}), content_type="application/json"
    )
    assert_429(create)
    _, other = new_app()
    assert token_client(other).get("/jobs").status_code == 200


def test_every_token_of_an_app_is_counted_on_its_own(db, limits):
    from jobs import services

    limits(requests=1)
    app, token = new_app()
    second, _ = services.token_issue(app_name=app.name)
    assert token_client(token).get("/jobs").status_code == 200
    assert token_client(token).get("/jobs").status_code == 429
    assert token_client(second).get("/jobs").status_code == 200


def test_token_limit_resets_after_the_window(raw, limits):
    limits(requests=2, window=30)
    _, token = new_app()
    client = token_client(token)
    assert [client.get("/jobs").status_code for _ in range(3)] == [200, 200, 429]
    end_windows(raw, "token:%")
    again = client.get("/jobs")
    assert again.status_code == 200 and again["RateLimit"] == '"token";r=1;t=30'
    raw.execute("SELECT hits FROM jobs_rate WHERE key LIKE 'token:%%'")
    assert raw.fetchone()[0] == 1  # a new window, counted from 1


def test_limits_off_count_nothing_and_send_no_headers(raw, limits):
    limits(requests=0, failed=0)
    _, token = new_app()
    for _ in range(5):
        response = token_client(token).get("/jobs")
        assert response.status_code == 200 and "RateLimit" not in response
    assert token_client("jp_wrong").get("/jobs").status_code == 401
    raw.execute("SELECT count(*) FROM jobs_rate")
    assert raw.fetchone()[0] == 0


def test_failed_authentications_per_address_then_429_even_for_a_good_token(raw, limits):
    limits(failed=3, window=60)
    _, good = new_app()
    for remaining in (2, 1, 0):
        response = token_client(f"jp_guess-{remaining}").get("/jobs")
        assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
        assert response["RateLimit-Policy"] == '"failed-auth";q=3;w=60'
        assert response["RateLimit"] == f'"failed-auth";r={remaining};t=60'
    blocked = token_client("jp_guess-4").get("/jobs")
    assert_429(blocked)
    assert "failed authentication" in blocked.json()["detail"]
    # The right token from the same address is refused too: a guesser learns nothing.
    assert_429(token_client(good).get("/jobs"))
    # Another address is not affected, nor a request without a token.
    assert token_client(good, "198.51.100.1").get("/jobs").status_code == 200
    assert APIClient(REMOTE_ADDR=ADDRESS).get("/jobs").status_code == 401
    raw.execute("SELECT hits FROM jobs_rate WHERE key = %s", [f"auth:{ADDRESS}"])
    assert raw.fetchone()[0] == 3
    end_windows(raw, "auth:%")
    assert token_client(good).get("/jobs").status_code == 200


def test_failed_authentications_behind_the_proxy_count_per_forwarded_client(raw, limits, settings):
    """From a trusted proxy (FORWARDED_ALLOW_IPS), the client is X-Forwarded-For's last address;
    from any other peer the header is ignored."""
    limits(failed=1)
    settings.JOBS_TRUSTED_PROXIES = "10.0.0.0/8"
    proxied = APIClient(REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="192.0.2.1")
    proxied.credentials(HTTP_AUTHORIZATION="Token jp_wrong")
    assert proxied.get("/jobs").status_code == 401
    assert proxied.get("/jobs").status_code == 429
    other_client = APIClient(REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="192.0.2.2")
    other_client.credentials(HTTP_AUTHORIZATION="Token jp_wrong")
    assert other_client.get("/jobs").status_code == 401
    spoofing = APIClient(REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR="192.0.2.3")
    spoofing.credentials(HTTP_AUTHORIZATION="Token jp_wrong")
    assert spoofing.get("/jobs").status_code == 401
    raw.execute("SELECT key FROM jobs_rate ORDER BY key")
    assert [r[0] for r in raw.fetchall()] == ["auth:192.0.2.1", "auth:192.0.2.2", "auth:198.51.100.9"]


def test_login_form_failed_attempts_then_429(raw, limits):
    limits(failed=2, window=60)
    _, token = new_app()
    browser = Client(REMOTE_ADDR=ADDRESS)
    browser.get("/api-auth/login/")
    for remaining in (1, 0):
        bad = browser.post("/api-auth/login/", {"token": "wrong"})
        assert bad.status_code == 400 and b"Invalid or revoked token" in bad.content
        assert bad["RateLimit"] == f'"failed-auth";r={remaining};t=60'
    blocked = browser.post("/api-auth/login/", {"token": token, "next": "/jobs"})
    assert_429(blocked)
    assert blocked["RateLimit-Policy"] == '"failed-auth";q=2;w=60'
    # The API shares the address's count.
    assert_429(token_client(token).get("/jobs"))
    end_windows(raw, "auth:%")
    assert browser.post("/api-auth/login/", {"token": token, "next": "/jobs"}).status_code == 302


def test_api_failures_count_on_the_login_form(db, limits):
    limits(failed=1)
    _, token = new_app()
    assert token_client("jp_wrong").get("/jobs").status_code == 401
    assert_429(Client(REMOTE_ADDR=ADDRESS).post("/api-auth/login/", {"token": token}))


def test_browser_session_requests_count_against_the_token(db, limits):
    limits(requests=3)
    _, token = new_app()
    browser = Client(REMOTE_ADDR=ADDRESS)
    browser.get("/api-auth/login/")
    assert browser.post("/api-auth/login/", {"token": token}).status_code == 302
    assert [browser.get("/jobs").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert_429(token_client(token).get("/jobs"))  # the same token's window


def test_a_failure_counted_by_another_worker_meanwhile_makes_this_one_429(raw, limits, monkeypatch):
    """Two guesses pass the check together when one attempt is left; the count each failure
    returns decides, so only one of them is a 401."""
    from jobs.services import ratelimit

    limits(failed=2)
    assert token_client("jp_first").get("/jobs").status_code == 401
    real_check = ratelimit.token_check

    def check_then_another_worker_fails(**kwargs):
        result = real_check(**kwargs)
        raw.execute("UPDATE jobs_rate SET hits = hits + 1 WHERE key = %s", [f"auth:{ADDRESS}"])
        return result

    monkeypatch.setattr(ratelimit, "token_check", check_then_another_worker_fails)
    assert_429(token_client("jp_second").get("/jobs"))


def test_the_authentication_query_is_prepared_once_per_connection(raw, limits):
    """Its plan costs more than running it, so each connection PREPAREs it once."""
    limits(requests=100, failed=5)
    _, token = new_app()
    for _ in range(3):
        assert token_client(token).get("/jobs").status_code == 200
    assert token_client("jp_wrong").get("/jobs").status_code == 401
    raw.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'rate_%%'")
    assert [r[0] for r in raw.fetchall()] == ["rate_token_authenticate"]
    raw.execute("SELECT hits FROM jobs_rate WHERE key LIKE 'token:%%'")
    assert raw.fetchone()[0] == 3


# -- a batch counts one request per job ----------------------------------------------------------
def batch_of(n: int) -> str:
    return json.dumps({"jobs": [{"type": "fibonacci", "params": {"n": i}} for i in range(n)]})


def token_hits(raw, app) -> int | None:
    raw.execute("SELECT hits FROM jobs_rate WHERE key = %s", [f"token:{app.token_id}"])
    row = raw.fetchone()
    return None if row is None else row[0]


def test_a_batchs_jobs_are_counted_in_the_running_window_or_start_a_new_one_whole(raw, limits):
    from jobs.exceptions import RateLimited
    from jobs.services import ratelimit

    limits(requests=5)
    app, _ = new_app()
    ratelimit.token_charge(app=app, jobs=4)  # no window yet: one of 4, its own request included
    assert token_hits(raw, app) == 4
    end_windows(raw, "token:%")
    ratelimit.token_charge(app=app, jobs=3)  # the window ended: a new one of 3, not 2
    assert token_hits(raw, app) == 3
    ratelimit.token_charge(app=app, jobs=2)  # the running window: the one its request did not count
    assert token_hits(raw, app) == 4
    with pytest.raises(RateLimited, match="may now create at most 1;"):
        ratelimit.token_charge(app=app, jobs=3)  # 4 + 2 > 5: refused, nothing counted
    with pytest.raises(RateLimited):
        ratelimit.token_charge(app=app, jobs=3, check_only=True)
    assert token_hits(raw, app) == 4
    ratelimit.token_charge(app=app, jobs=1)  # a one-job batch: only its own request
    assert token_hits(raw, app) == 4


def test_a_batch_refused_for_the_rate_is_created_by_its_retry_in_the_next_window(raw, limits):
    limits(requests=5)
    app, token = new_app()
    client = token_client(token)

    def post(n: int, key: str):
        return client.post("/batches", batch_of(n), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)

    assert post(3, "first").status_code == 201
    refused = post(3, "second")  # its own request makes 4; 4 + 2 > 5
    assert_429(refused)
    assert "a request in this window may now create at most 1;" in refused.json()["detail"]
    raw.execute("SELECT count(*) FROM jobs_batch WHERE app_id = %s", [app.id])
    assert raw.fetchone()[0] == 1
    end_windows(raw, "token:%")
    retried = post(3, "second")
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried
    assert retried["RateLimit"] == '"token";r=2;t=60'
    one = post(1, "third")
    assert one.status_code == 201 and one["RateLimit"] == '"token";r=1;t=60'
    assert token_hits(raw, app) == 4


def test_a_batch_from_a_browser_session_counts_its_jobs_against_the_token(db, limits):
    limits(requests=4)
    _, token = new_app()
    browser = Client(REMOTE_ADDR=ADDRESS)
    assert browser.post("/api-auth/login/", {"token": token}).status_code == 302
    created = browser.post("/batches", batch_of(3), content_type="application/json")
    assert created.status_code == 201 and created["RateLimit"] == '"token";r=1;t=60'
    assert browser.get("/jobs").status_code == 200
    assert_429(token_client(token).get("/jobs"))  # the same token's window: 3 + 1 + 1 > 4


def test_a_repeat_whose_first_request_filled_the_window_meanwhile_answers_its_batch(raw, limits, monkeypatch):
    from jobs.services import batches

    limits(requests=5)
    _, token = new_app()
    client = token_client(token)
    first = client.post("/batches", batch_of(3), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert first.status_code == 201
    # The repeat looks before the first request's batch is visible (as a concurrent one
    # does), then meets the window the first one filled: it answers that batch, not 429.
    lookup = batches._batch_for_idempotency_key
    calls = []

    def not_yet_then_found(*args):
        calls.append(args)
        return None if len(calls) == 1 else lookup(*args)

    monkeypatch.setattr(batches, "_batch_for_idempotency_key", not_yet_then_found)
    again = client.post("/batches", batch_of(3), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and len(calls) == 2
