"""Input and sessions, hardened, over a real gunicorn: the shipped docker/gunicorn.conf.py
with the production settings, on 127.0.0.1. What only a real server shows: a chunked
request body (gunicorn decodes the chunks; Django alone would see an empty body), the
access log as written (no credential in it), HSTS only over TLS (the scheme gunicorn takes
from the proxy), the pages' Content-Security-Policy."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings

from .harness import ROOT, Platform, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

GUNICORN_CONFIG = ROOT / "docker" / "gunicorn.conf.py"
PRODUCTION = {"SECRET_KEY": "e2e-hardening-secret-key-not-for-real-use", "SECURE_COOKIES": "false"}


@pytest.fixture(scope="module")
def web(tmp_path_factory) -> Iterator[tuple[Platform, str]]:
    platform = Platform(settings.DATABASES["default"], tmp_path_factory.mktemp("hardening-logs"), extra_env=PRODUCTION)
    platform.env["DJANGO_SETTINGS_MODULE"] = "jobplatform.settings.production"
    platform.create_database()
    try:
        platform.start_web(config=GUNICORN_CONFIG)
        yield platform, platform.token("hardening-tests")
    finally:
        platform.stop_all()
        platform.drop_database()


def access_log(platform: Platform) -> str:
    return "\n".join(path.read_text() for path in sorted(platform.log_dir.glob("gunicorn-*.log")))


def raw_request(platform: Platform, data: bytes) -> bytes:
    """Send ``data`` as is and read the whole answer (the request asks to close)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", platform.port), timeout=10) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered (and closed) before the whole request was sent: read the answer
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def chunked(token: str, body: bytes, piece: int = 7) -> bytes:
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + piece]), body[i : i + piece]) for i in range(0, len(body), piece)
    )
    return (
        b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Authorization: Token " + token.encode() + b"\r\n\r\n" + chunks + b"0\r\n\r\n"
    )


def test_a_chunked_body_is_read(web):
    platform, token = web
    body = json.dumps({"type": "fibonacci", "params": {"n": 30}, "metadata": {"sent": "in chunks"}}).encode()
    answer = raw_request(platform, chunked(token, body))
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201"), answer[:500]
    job = json.loads(payload)
    assert job["type"] == "fibonacci" and job["params"] == {"n": 30} and job["metadata"] == {"sent": "in chunks"}
    # The same through requests, which sends a generator's pieces chunked.
    response = requests.post(
        f"{platform.base_url}/jobs",
        data=iter([body[:10], body[10:]]),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 201 and response.json()["metadata"] == {"sent": "in chunks"}


def test_a_chunked_body_over_the_limit_is_413(web):
    platform, token = web
    limit = int(settings.JOBS["MAX_BODY_BYTES"])
    body = b'{"type": "fibonacci", "params": {"n": 1}, "metadata": {"x": "' + b"a" * limit + b'"}}'
    answer = raw_request(platform, chunked(token, body, piece=65536))
    # Only the head is sure to arrive: the server answers before the body ends and closes
    # the connection, and the client's unsent rest makes the close a reset.
    head = answer.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 413") and b"application/problem+json" in head, answer[:500]


def test_100000_unknown_keys_get_a_small_answer(web):
    platform, token = web
    keys = [f"u{i:x}" for i in range(100_000)]
    body = '{"type": "fibonacci", "params": {"n": 5}, ' + ",".join(f'"{k}":0' for k in keys) + "}"
    response = requests.post(
        f"{platform.base_url}/jobs",
        data=body.encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400
    assert len(response.content) < 10_000 and response.json()["errors_truncated"] == 100_000 - 50


def test_the_access_log_holds_no_credentials(web):
    platform, token = web
    secrets = {
        "query": "jp_QuerySecret1",
        "access": "jp_AccessSecret2",
        "basic": "jp_BasicUserSecret3",
        "referer": "jp_RefererSecret4",
        "api_key": "jp_ApiKeySecret5",
    }
    base = platform.base_url
    requests.get(f"{base}/jobs?token={secrets['query']}&status=queued", timeout=10)
    requests.get(f"{base}/jobs?access_token={secrets['access']}", timeout=10)
    requests.get(f"{base}/health", auth=(secrets["basic"], ""), timeout=10)
    requests.get(
        f"{base}/health?probe=1", headers={"Referer": f"https://ui.example/?token={secrets['referer']}"}, timeout=10
    )
    requests.get(
        f"{base}/job-types?api_key={secrets['api_key']}", headers={"Authorization": f"Token {token}"}, timeout=10
    )
    lines = wait_for(
        lambda: [line for line in access_log(platform).splitlines() if "api_key=" in line],
        timeout=10,
        what="the access log line of the last request",
    )
    log = access_log(platform)
    for name, secret in secrets.items():
        assert secret not in log, f"the {name} credential is in the access log"
    assert token not in log
    # The lines are there, with the credentials replaced (not the whole line dropped).
    assert '"GET /jobs?token=[redacted]&status=queued HTTP/1.1" 401' in log
    assert '"GET /jobs?access_token=[redacted] HTTP/1.1" 401' in log
    assert '"GET /job-types?api_key=[redacted] HTTP/1.1" 200' in lines[-1]
    assert any(" [redacted] [" in line and '"GET /health HTTP/1.1" 200' in line for line in log.splitlines())
    assert '"https://ui.example/?token=[redacted]"' in log


def test_hsts_only_over_tls(web):
    platform, _ = web
    # gunicorn takes the scheme from X-Forwarded-Proto from the proxy's address (127.0.0.1
    # here, FORWARDED_ALLOW_IPS): the request arrived over TLS at the proxy.
    over_tls = requests.get(f"{platform.base_url}/health", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert over_tls.status_code == 200
    assert over_tls.headers["Strict-Transport-Security"] == "max-age=31536000"
    plain = requests.get(f"{platform.base_url}/health", timeout=10)
    assert "Strict-Transport-Security" not in plain.headers


def test_the_pages_carry_the_policy_and_their_files_are_served(web):
    platform, _ = web
    page = requests.get(f"{platform.base_url}/api-auth/login/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    root = requests.get(f"{platform.base_url}/", headers={"Accept": "text/html"}, timeout=10)
    assert root.headers["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    for path in ("/static/jobs/login.css", "/static/rest_framework/js/jquery-3.7.1.min.js"):
        assert requests.get(f"{platform.base_url}{path}", timeout=10).status_code == 200, path
