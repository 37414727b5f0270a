"""The request path's shortcuts keep the contract: the token cache's revocation bound,
and the JSON fast path's output."""

from __future__ import annotations

import json
import time

from jobs import selectors, services
from tests.integration.conftest import new_app


def test_a_token_revoked_elsewhere_is_refused_within_the_cache_bound(db, settings, raw, monkeypatch):
    settings.JOBS = {**settings.JOBS, "TOKEN_CACHE_SECONDS": 5.0}
    app, token = new_app()
    assert selectors.app_for_token(token=token) == app  # looked up, now cached
    # Another process revokes it: this process's cache does not know yet.
    raw.execute("UPDATE jobs_token SET revoked_at = now() WHERE id = %s", [app.token_id])
    assert selectors.app_for_token(token=token) == app
    later = time.monotonic() + 5.1
    monkeypatch.setattr("jobs.selectors.tokens.time.monotonic", lambda: later)
    assert selectors.app_for_token(token=token) is None  # the bound has passed


def test_a_token_revoked_in_this_process_is_refused_at_once(db, settings):
    settings.JOBS = {**settings.JOBS, "TOKEN_CACHE_SECONDS": 3600.0}
    app, token = new_app()
    assert selectors.app_for_token(token=token) == app
    prefix = next(t.prefix for t in selectors.token_list() if t.id == app.token_id)
    services.token_revoke(ref=prefix)
    assert selectors.app_for_token(token=token) is None


def test_zero_turns_the_cache_off(db, settings, raw):
    settings.JOBS = {**settings.JOBS, "TOKEN_CACHE_SECONDS": 0}
    app, token = new_app()
    assert selectors.app_for_token(token=token) == app
    raw.execute("UPDATE jobs_token SET revoked_at = now() WHERE id = %s", [app.token_id])
    assert selectors.app_for_token(token=token) is None


def test_the_json_fast_path_and_drfs_own_path_answer_the_same(api):
    body = {"type": "fibonacci", "params": {"n": 1}, "metadata": {"big": 2**70, "text": "ç\u2028", "f": 0.1}}
    created = api.post("/jobs", data=json.dumps(body), content_type="application/json")
    assert created.status_code == 201
    fast = api.get(created["Location"])  # no Accept: the fast path
    negotiated = api.get(created["Location"], HTTP_ACCEPT="application/json; indent=0, text/plain;q=0.5")
    assert fast["Content-Type"] == negotiated["Content-Type"] == "application/json"
    assert json.loads(fast.content) == json.loads(negotiated.content)
    assert json.loads(fast.content)["metadata"] == body["metadata"]  # a 70-bit integer survives
