"""The production serving stack, for real: nginx with the shipped docker/nginx template in
front of gunicorn with the shipped docker/gunicorn.conf.py, against slow and stalling
clients. All traffic goes to 127.0.0.1; every socket and process is closed at the end."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings

from .harness import ROOT, Nginx, Platform, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

GUNICORN_CONFIG = ROOT / "docker" / "gunicorn.conf.py"
#: Short enough to keep the test quick; the body deadline stays below the worker timeout
#: as the shipped config insists, so a worker kill (gunicorn's 500) would come later.
WEB_ENV = {"WEB_BODY_TIMEOUT": "2", "WEB_TIMEOUT": "8"}
SLOW_CLIENTS = 50
#: The shipped nginx timeouts (client_header_timeout, client_body_timeout).
NGINX_CLIENT_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[Platform, Nginx, str]]:
    platform = Platform(settings.DATABASES["default"], tmp_path_factory.mktemp("proxy-logs"), extra_env=WEB_ENV)
    platform.create_database()
    nginx = Nginx(upstream_port=platform.port)
    try:
        platform.start_web(config=GUNICORN_CONFIG)
        nginx.start()
        yield platform, nginx, platform.token("proxy-tests")
    finally:
        nginx.stop()
        platform.stop_all()
        platform.drop_database()


@contextlib.contextmanager
def open_sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def connect(port: int, opened: list[socket.socket], source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    opened.append(sock)
    return sock


def slow_header_clients(port: int, opened: list[socket.socket], stop: threading.Event) -> threading.Thread:
    """SLOW_CLIENTS connections that send part of their headers; half of them then trickle
    one more byte every half second (a thread), the other half stall."""
    clients = []
    for number in range(SLOW_CLIENTS):
        sock = connect(port, opened)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-Client: " + str(number).encode())
        clients.append(sock)

    def trickle() -> None:
        while not stop.wait(0.5):
            for sock in clients[::2]:
                with contextlib.suppress(OSError):
                    sock.send(b"z")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    return thread


def stalled_body(port: int, opened: list[socket.socket], token: str, sent: bytes = b'{"type": "fib') -> socket.socket:
    """A POST /jobs that announces 200 bytes of body, sends a few, and stops."""
    sock = connect(port, opened)
    sock.sendall(
        b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: Token {token}\r\nContent-Length: 200\r\n\r\n".encode()
        + sent
    )
    return sock


def gunicorn_posts(platform: Platform) -> int:
    """POST /jobs requests in gunicorn's access log so far."""
    return sum(p.read_text().count('"POST /jobs ') for p in platform.log_dir.glob("gunicorn-*.log"))


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def probe(base_url: str, token: str) -> list[tuple[str, int, float]]:
    """GET /health and an authenticated GET /jobs, each on a new connection, timed."""
    results = []
    for path, headers in (("/health", {}), ("/jobs", {"Authorization": f"Token {token}"})):
        started = time.monotonic()
        try:
            status = requests.get(base_url + path, headers=headers, timeout=1.0).status_code
        except requests.RequestException:
            status = 0  # no answer within the second
        results.append((path, status, time.monotonic() - started))
    return results


def test_slow_clients_against_bare_gunicorn_block_it(stack):
    """The attack is real: without the proxy, 50 slow-header clients take every sync
    worker, and /health gets no answer within a second."""
    platform, _, token = stack
    stop = threading.Event()
    with open_sockets() as opened:
        trickler = slow_header_clients(platform.port, opened, stop)
        try:
            time.sleep(0.5)
            answers = [probe(platform.base_url, token) for _ in range(3)]
        finally:
            stop.set()
            trickler.join(timeout=5)
    assert all(status == 0 for round_ in answers for _, status, _ in round_), answers
    # Once the slow clients are gone, gunicorn answers again.
    assert requests.get(f"{platform.base_url}/health", timeout=10).status_code == 200


def test_behind_nginx_slow_clients_and_a_stalled_body_block_nothing(stack):
    platform, nginx, token = stack
    stop = threading.Event()
    with open_sockets() as opened:
        trickler = slow_header_clients(nginx.port, opened, stop)
        posts_before = gunicorn_posts(platform)
        stalled = stalled_body(nginx.port, opened, token)
        started = time.monotonic()
        try:
            rounds = []
            while time.monotonic() - started < 5:
                rounds.append(probe(nginx.base_url, token))
                time.sleep(0.2)
            for answers in rounds:
                for path, status, seconds in answers:
                    assert status == 200 and seconds < 1.0, (path, status, seconds, rounds)

            # nginx gives up on the stalled body after client_body_timeout: it logs 408 and
            # closes the connection without an answer, so the client never sees a 500, and
            # gunicorn never saw the request at all.
            answer = read_until_closed(stalled, timeout=NGINX_CLIENT_TIMEOUT + 5)
            waited = time.monotonic() - started
            assert answer == b"", answer
            assert NGINX_CLIENT_TIMEOUT - 1 < waited < NGINX_CLIENT_TIMEOUT + 5, waited
            assert '"POST /jobs HTTP/1.1" 408 ' in nginx.access_log.read_text()
            assert gunicorn_posts(platform) == posts_before

            # The slow-header clients, trickling or not, are cut off by client_header_timeout.
            for sock in opened[:SLOW_CLIENTS]:
                assert read_until_closed(sock, timeout=5) == b""
            assert time.monotonic() - started < NGINX_CLIENT_TIMEOUT + 8
        finally:
            stop.set()
            trickler.join(timeout=5)
    assert all(status == 200 for status in (s for _, s, _ in probe(nginx.base_url, token)))


def test_stalled_or_trickling_body_at_gunicorn_is_a_408_problem(stack):
    """If a request reaches gunicorn directly, a body that stops (or only trickles) ends
    as 408 problem+json after WEB_BODY_TIMEOUT: before the worker timeout, whose kill
    gunicorn would answer with a 500."""
    platform, _, token = stack
    jobs_before = platform.sql("SELECT count(*) AS n FROM jobs_job")[0]["n"]
    with open_sockets() as opened:
        stalled = stalled_body(platform.port, opened, token)
        trickling = stalled_body(platform.port, opened, token)
        started = time.monotonic()
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.3):
                with contextlib.suppress(OSError):
                    trickling.send(b" ")

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            answers = [read_until_closed(sock, timeout=20) for sock in (stalled, trickling)]
        finally:
            stop.set()
            thread.join(timeout=5)
    waited = time.monotonic() - started
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), answer
        assert b"content-type: application/problem+json" in head.lower()
        assert json.loads(body)["status"] == 408
    assert waited < float(WEB_ENV["WEB_TIMEOUT"])
    assert platform.sql("SELECT count(*) AS n FROM jobs_job")[0]["n"] == jobs_before


def test_nginx_answers_an_oversized_body_with_413_problem(stack):
    platform, nginx, token = stack
    posts_before = gunicorn_posts(platform)
    with open_sockets() as opened:
        sock = connect(nginx.port, opened)
        sock.sendall(
            b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Token {token}\r\nContent-Length: {1024 * 1024 + 1}\r\n\r\n".encode()
        )
        answer = read_until_closed(sock, timeout=10)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["status"] == 413
    assert gunicorn_posts(platform) == posts_before  # refused on its headers alone


def test_only_the_proxy_decides_the_scheme(stack):
    """X-Forwarded-Proto from a client is replaced by nginx; gunicorn honours the header
    only from FORWARDED_ALLOW_IPS (the proxy, 127.0.0.1 here), and Django follows gunicorn."""
    platform, nginx, token = stack
    body = {"type": "fibonacci", "params": {"n": 10}}
    spoofed = {"Authorization": f"Token {token}", "X-Forwarded-Proto": "https"}

    through_proxy = requests.post(f"{nginx.base_url}/jobs", json=body, headers=spoofed, timeout=10)
    assert through_proxy.status_code == 201, through_proxy.text
    assert through_proxy.headers["Location"].startswith(f"http://127.0.0.1:{nginx.port}/jobs/")

    # The same header straight from the proxy's address is honoured (so the check above
    # can fail) ...
    from_proxy_address = requests.post(f"{platform.base_url}/jobs", json=body, headers=spoofed, timeout=10)
    assert from_proxy_address.headers["Location"].startswith("https://")

    # ... and from any other peer it is not (127.0.0.2 is another loopback address).
    with open_sockets() as opened:
        sock = connect(platform.port, opened, source="127.0.0.2")
        payload = json.dumps(body).encode()
        sock.sendall(
            b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Forwarded-Proto: https\r\n"
            + f"Authorization: Token {token}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        head = read_until_closed(sock, timeout=10).partition(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 201 "), head
    assert "\r\nlocation: http://127.0.0.1" in head.lower(), head


def test_nginx_answers_503_problem_when_web_does_not_answer():
    nobody_listens = free_port()
    nginx = Nginx(upstream_port=nobody_listens)
    try:
        nginx.start()
        response = requests.get(f"{nginx.base_url}/health", timeout=10)
    finally:
        nginx.stop()
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    assert response.json()["status"] == 503
