"""gunicorn's production configuration: ``gunicorn -c docker/gunicorn.conf.py jobplatform.wsgi``.

Meant to run behind the buffering proxy in ``docker/nginx/`` (see docs/operations.md,
"Running in production"): nginx reads every request's headers and body before gunicorn sees it, so a
slow client waits in nginx, not in one of these few sync workers. What is set here is the
second line, for a request that reaches gunicorn some other way:

- ``timeout``: a worker silent this long (stuck application code) is killed and restarted.
- ``WEB_BODY_TIMEOUT``: the whole request body must arrive within this many seconds after
  the headers. A body that stalls or trickles past it makes the application's read fail,
  and the API answers 408 ``application/problem+json``. It is shorter than ``timeout``, so a
  slow body never lasts until the worker is killed, which gunicorn answers with a 500.
- ``forwarded_allow_ips``: only these peers (the proxy) may set the scheme through
  ``X-Forwarded-Proto``; Django trusts what gunicorn decided (``request.is_secure()``).
- ``PROMETHEUS_MULTIPROC_DIR``: every worker keeps its HTTP metrics in files there, and
  ``/metrics`` (whichever worker answers) sums them all. A fresh folder per gunicorn
  (or the one given, emptied at start); ``child_exit`` tells prometheus-client a worker died.
- ``logger_class``: the access log never holds a credential. Query parameters that carry
  one (``token=``, ``access_token=``, ``api_key=``, ``password=``, …) are written as
  ``token=[redacted]`` in the request line, the query string and the referer, and the
  Basic-auth user name (``%(u)s``) as ``[redacted]``; ``Authorization`` and ``Cookie``
  headers, should a format name them, too.

gunicorn gives a sync worker no bound on the time a client takes to send its headers:
that is the proxy's job (``client_header_timeout``).

Every value comes from the environment; command-line options (``--bind``, ``--workers``)
and ``GUNICORN_CMD_ARGS`` override this file.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from gunicorn.glogging import Logger

# gunicorn reads this file before it puts the project on the path: the project's own
# defaults (jobs.conf) are one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from jobs.conf import DEFAULT_TRUSTED_PROXIES


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name) or str(default)
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds, got {raw!r}") from None


bind = ["0.0.0.0:8000"]
workers = int(os.environ.get("WEB_WORKERS") or 4)
# Sync workers: one request at a time each, which is what the proxy in front is for.
worker_class = "sync"
timeout = int(_number("WEB_TIMEOUT", 30))
graceful_timeout = int(_number("WEB_GRACEFUL_TIMEOUT", 30))
body_timeout = _number("WEB_BODY_TIMEOUT", 10)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or DEFAULT_TRUSTED_PROXIES
accesslog = "-"
control_socket_disable = True

if not 0 < body_timeout < timeout:
    raise SystemExit(
        f"WEB_BODY_TIMEOUT ({body_timeout:g}) must be above 0 and below WEB_TIMEOUT ({timeout}): "
        "a body still arriving when the worker is killed gets a 500"
    )


# Set before any worker imports prometheus-client (it picks its storage at import time);
# the workers inherit it. Our own folder when none is given, removed on exit.
_metrics_dir_is_ours = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _metrics_dir_is_ours:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="jobplatform-metrics-")


def on_starting(server: Any) -> None:
    """Once, before the first worker: start the counts from zero (files left by an earlier
    run would be summed in)."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended: prometheus-client drops its live gauges (its counters stay summed)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _metrics_dir_is_ours:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


class _BodyDeadlineSocket:
    """The client socket as the request body reader sees it: every ``recv`` waits at most
    until one deadline for the whole body, so a trickling client cannot stretch it."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def recv(self, size: int, *flags: int) -> bytes:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the request body did not arrive within {body_timeout:g} s")
        previous = self._sock.gettimeout()
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv(size, *flags)
        finally:
            self._sock.settimeout(previous)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def pre_request(worker: Any, req: Any) -> None:
    """The headers are in; from now on the body has ``body_timeout`` seconds to arrive.

    The body is read through the request's unreader (``req.unreader.sock.recv``); the
    response is written to the client socket itself, so writing is not affected."""
    unreader = getattr(req, "unreader", None)
    sock = getattr(unreader, "sock", None)
    if isinstance(sock, socket.socket):
        unreader.sock = _BodyDeadlineSocket(sock, time.monotonic() + body_timeout)


#: Query parameters whose value is a credential: names containing one of these words…
_SECRET_WORDS = ("token", "key", "secret", "passw", "pwd", "auth", "signature", "session", "credential")
#: …or exactly one of these names.
_SECRET_NAMES = frozenset({"sig", "code", "pass", "jwt"})
_PARAM = re.compile(r"([?&;])([^=&;#\s?]*)=([^&;#\s?]*)")
_REDACTED = "[redacted]"
#: Request headers (``%({name}i)s``) and environ values (``%({name}e)s``) never logged.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
_SECRET_ENVIRON = frozenset({"http_authorization", "http_proxy_authorization", "http_cookie", "http_x_api_key"})
#: Atoms that hold a URL or a query string.
_URL_ATOMS = ("r", "q", "f", "{referer}i", "{raw_uri}e", "{query_string}e", "{http_referer}e", "{request_uri}e")


def _is_secret(name: str) -> bool:
    name = unquote_plus(name).lower()
    return name in _SECRET_NAMES or any(word in name for word in _SECRET_WORDS)


def redact_url(text: str) -> str:
    """``text`` (a request line, a URL or ``?`` + a query string) with every credential
    parameter's value replaced by ``[redacted]``."""
    if "=" not in text:
        return text
    return _PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}={_REDACTED}" if _is_secret(m.group(2)) else m.group(0), text)


class RedactingLogger(Logger):
    """gunicorn's logger, with credentials taken out of every access-log atom."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        if atoms.get("u", "-") != "-":
            atoms["u"] = _REDACTED  # a Basic-auth user name may be the token itself
        for name in _URL_ATOMS:
            value = atoms.get(name)
            if isinstance(value, str):
                atoms[name] = redact_url("?" + value)[1:] if name in ("q", "{query_string}e") else redact_url(value)
        for name in atoms:
            if (name.endswith("}i") and name[1:-2] in _SECRET_HEADERS) or (
                name.endswith("}e") and name[1:-2] in _SECRET_ENVIRON
            ):
                atoms[name] = _REDACTED
        return atoms


logger_class = RedactingLogger
