"""Rate limits across processes: a real gunicorn with two workers shares one count."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import settings

from .harness import Platform, running_platform

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LIMIT = 20
FAILED = 5
ENV = {
    "JOBS_RATE_LIMIT_REQUESTS": str(LIMIT),
    "JOBS_RATE_LIMIT_FAILED_AUTH": str(FAILED),
    "JOBS_RATE_LIMIT_WINDOW": "60",
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    with running_platform(settings.DATABASES["default"], tmp_path_factory.mktemp("rate-logs"), ENV) as instance:
        assert instance.web_workers == 2
        yield instance


def burst(url: str, token: str, total: int) -> list[requests.Response]:
    """``total`` requests from 6 threads at once, each on a new connection, so both
    workers take some of them."""

    def one(_: int) -> requests.Response:
        return requests.get(url, headers={"Authorization": f"Token {token}", "Connection": "close"}, timeout=30)

    with ThreadPoolExecutor(max_workers=6) as pool:
        return list(pool.map(one, range(total)))


def refusing_workers(platform: Platform, path: str = "/jobs") -> Counter[str]:
    """Which gunicorn worker processes logged a 429 (the log format carries the pid)."""
    text = "".join(p.read_text() for p in platform.log_dir.glob("gunicorn-*.log"))
    return Counter(re.findall(rf"WARNING django.request (\d+) Too Many Requests: {re.escape(path)}", text))


def test_the_token_limit_holds_across_two_workers(platform):
    token = platform.token("burst")
    health = requests.get(f"{platform.base_url}/health", timeout=5)
    assert "RateLimit" not in health.headers  # no token, nothing counted
    responses = burst(f"{platform.base_url}/jobs", token, 3 * LIMIT)
    codes = Counter(r.status_code for r in responses)
    # One shared count: exactly LIMIT answers, whichever worker served them (per-worker
    # counters would let up to 2 * LIMIT through).
    assert codes == {200: LIMIT, 429: 2 * LIMIT}, codes
    remaining = sorted(int(re.search(r";r=(\d+);", r.headers["RateLimit"]).group(1)) for r in responses if r.ok)
    assert remaining == list(range(LIMIT))  # each request saw its own count: no lost update
    for refused in (r for r in responses if r.status_code == 429):
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.headers["RateLimit-Policy"] == f'"token";q={LIMIT};w=60'
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(refusing_workers(platform)) == 2, "both workers should have refused some requests"
    # The window ends (moved by SQL): the token is served again, counted from 1.
    platform.sql("UPDATE jobs_rate SET window_start = window_start - interval '61 seconds'")
    again = requests.get(f"{platform.base_url}/jobs", headers={"Authorization": f"Token {token}"}, timeout=10)
    assert again.status_code == 200 and again.headers["RateLimit"].startswith(f'"token";r={LIMIT - 1};')


def test_failed_authentications_hold_across_two_workers(platform):
    good = platform.token("victim")
    responses = burst(f"{platform.base_url}/job-types", "jp_wrong-guess", 6 * FAILED)
    codes = Counter(r.status_code for r in responses)
    # Exactly FAILED answers are 401, even for guesses that raced past the check in two
    # workers at once: the count each failure returns decides.
    assert codes == {401: FAILED, 429: 5 * FAILED}, codes
    assert len(refusing_workers(platform, "/job-types")) == 2
    blocked = requests.get(f"{platform.base_url}/jobs", headers={"Authorization": f"Token {good}"}, timeout=10)
    assert blocked.status_code == 429 and blocked.headers["RateLimit"].startswith('"failed-auth";r=0;')
    platform.sql("UPDATE jobs_rate SET window_start = window_start - interval '61 seconds' WHERE key LIKE 'auth:%%'")
    ok = requests.get(f"{platform.base_url}/jobs", headers={"Authorization": f"Token {good}"}, timeout=10)
    assert ok.status_code == 200
