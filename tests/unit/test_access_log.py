"""The shipped gunicorn config's access-log redaction, atom by atom (the same file over a
real gunicorn, its log read back: tests/e2e/test_hardening.py)."""

from __future__ import annotations

import base64
import datetime
import os
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest


def _load_config() -> dict:
    """The config module's namespace, without letting it change this process's environment
    (it points PROMETHEUS_MULTIPROC_DIR at a new folder, which would switch the test
    process's metrics to multiprocess mode)."""
    saved = dict(os.environ)
    try:
        return runpy.run_path(str(Path(__file__).resolve().parents[2] / "docker" / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


CONFIG = _load_config()
redact_url = CONFIG["redact_url"]


@pytest.mark.parametrize(
    ("sent", "logged"),
    [
        ("GET /jobs?token=jp_s1&status=queued HTTP/1.1", "GET /jobs?token=[redacted]&status=queued HTTP/1.1"),
        (
            "/x?access_token=a;api_key=b&apiKey=c&password=d",
            "/x?access_token=[redacted];api_key=[redacted]&apiKey=[redacted]&password=[redacted]",
        ),
        (
            "/x?sig=a&code=b&client_secret=c&jwt=d",
            "/x?sig=[redacted]&code=[redacted]&client_secret=[redacted]&jwt=[redacted]",
        ),
        ("/x?to%6Ben=a", "/x?to%6Ben=[redacted]"),  # a percent-encoded name is still a token
        ("/x?next=/y?token=a", "/x?next=/y?token=[redacted]"),  # a URL inside a value
        ("/jobs?status=queued&limit=5&metadata.run=7", "/jobs?status=queued&limit=5&metadata.run=7"),
        ("GET /health HTTP/1.1", "GET /health HTTP/1.1"),
    ],
)
def test_credentials_in_urls_are_redacted(sent, logged):
    assert redact_url(sent) == logged


def atoms(environ: dict, headers: list[tuple[str, str]]) -> dict:
    cfg = SimpleNamespace(
        **{name: None for name in ("errorlog", "accesslog", "syslog", "logconfig", "logconfig_dict", "logconfig_json")}
    )
    logger = CONFIG["RedactingLogger"].__new__(CONFIG["RedactingLogger"])
    logger.cfg = cfg
    base = {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"}
    response = SimpleNamespace(status="200 OK", sent=2, headers=[])
    request = SimpleNamespace(headers=headers)
    return logger.atoms(response, request, {**base, **environ}, datetime.timedelta(seconds=0.01))


def test_every_atom_that_can_hold_a_credential_is_redacted():
    basic = "Basic " + base64.b64encode(b"jp_user_secret:").decode()
    result = atoms(
        {
            "RAW_URI": "/jobs?token=jp_q",
            "PATH_INFO": "/jobs",
            "QUERY_STRING": "token=jp_q",
            "HTTP_REFERER": "https://ui.example/?access_token=jp_r",
            "HTTP_AUTHORIZATION": basic,
            "HTTP_COOKIE": "sessionid=abc",
        },
        [("AUTHORIZATION", basic), ("COOKIE", "sessionid=abc"), ("REFERER", "https://ui.example/?access_token=jp_r")],
    )
    assert result["u"] == "[redacted]"
    assert result["r"] == "GET /jobs?token=[redacted] HTTP/1.1"
    assert result["q"] == "token=[redacted]"
    assert result["f"] == result["{referer}i"] == "https://ui.example/?access_token=[redacted]"
    assert result["{authorization}i"] == result["{cookie}i"] == "[redacted]"
    assert result["{http_authorization}e"] == result["{http_cookie}e"] == "[redacted]"
    assert result["{raw_uri}e"] == "/jobs?token=[redacted]" and result["{query_string}e"] == "token=[redacted]"
    leaked = [name for name, value in result.items() if isinstance(value, str) and "jp_" in value]
    assert leaked == []


def test_no_user_stays_a_dash():
    assert atoms({"RAW_URI": "/health", "PATH_INFO": "/health"}, [])["u"] == "-"
