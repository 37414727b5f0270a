"""The requests the platform itself sends (completion callbacks, ``migrate_rows``' batches):
one POST, redirects never followed, the answer's body never read, and a hard deadline on
the whole exchange.

urllib's ``timeout`` bounds each socket operation, not the request: a receiver that sends
one header line every 2 s keeps a request with a 5 s timeout open for as long as it likes
(24 s was seen), past the callback's lease, while another deliverer posts the same callback,
and for up to a migration attempt's 7,200 s. So each request has a watchdog timer that shuts
its socket down at the deadline: whatever the request was waiting for (connecting through a
proxy, the TLS handshake, sending the body, the status line, a header) fails at once, and
:func:`post` raises ``TimeoutError``. The one wait a watchdog cannot cut short comes before
any socket exists: resolving the host name, bounded by the system resolver's own timeout
and attempts (callers leave room for it; see ``jobs.runtime.callbacks.lease``).
"""

from __future__ import annotations

import email.message
import http.client
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could point anywhere (the internal network): it counts as the answer (an
    HTTPError with the 3xx status), never followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass(frozen=True)
class Reply:
    """A complete status line and headers (any status: a 4xx or 5xx is a reply too)."""

    status: int
    headers: email.message.Message


class _Watchdog:
    """Shuts down every connection it watches once ``seconds`` have passed (one watched
    after that is shut down at once). ``shutdown`` rather than ``close``: it wakes a thread
    blocked reading or writing the connection, which a close from another thread does not.
    It keeps a duplicate of each socket and shuts that down (a shutdown acts on the
    connection, whichever descriptor names it): TLS takes a socket over by detaching it,
    before its handshake, and the duplicate still names the connection."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._timer.cancel()
            for twin in self._sockets:
                twin.close()
            self._sockets.clear()

    def disarm(self) -> None:
        """Fire no more; afterwards ``fired`` says for good whether it did."""
        with self._lock:
            self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        twin = sock.dup()
        with self._lock:
            self._sockets.append(twin)
            if self.fired:
                _shut(twin)

    def wrap(self, create: Callable[..., socket.socket]) -> Callable[..., socket.socket]:
        """``create`` (``socket.create_connection``), each socket it makes watched."""

        def create_and_watch(*args: Any, **kwargs: Any) -> socket.socket:
            sock = create(*args, **kwargs)
            self.watch(sock)
            return sock

        return create_and_watch

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the connection is already gone


# The TCP connection is watched as soon as it is made (``_create_connection`` is
# http.client's own hook for making it): before a proxy tunnel and the TLS handshake, so
# neither can drip past the deadline either.
class _WatchedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, watchdog: _Watchdog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = watchdog.wrap(self._create_connection)


class _WatchedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, watchdog: _Watchdog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = watchdog.wrap(self._create_connection)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.watchdog = watchdog

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_WatchedHTTPConnection, req, watchdog=self.watchdog)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.watchdog = watchdog

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_WatchedHTTPSConnection, req, context=self._context, watchdog=self.watchdog)


def post(url: str, body: bytes, *, headers: dict[str, str], deadline: float) -> Reply:
    """POST ``body`` to ``url`` and read the answer's status line and headers, all within
    ``deadline`` seconds (connecting, sending and reading together). Redirects are not
    followed (a 3xx is the reply); the answer's body is never read. Raises
    ``TimeoutError`` at the deadline, ``urllib.error.URLError``, ``OSError`` or
    ``http.client.HTTPException`` for what the network or the receiver does."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    ends_at = time.monotonic() + deadline
    late = TimeoutError(f"no complete answer within {deadline:g} s")
    with _Watchdog(deadline) as watchdog:
        opener = urllib.request.build_opener(NoRedirects, _HTTPHandler(watchdog), _HTTPSHandler(watchdog))
        try:
            try:
                with opener.open(request, timeout=deadline) as response:
                    reply = Reply(response.status, response.headers)
            except urllib.error.HTTPError as exc:
                exc.close()  # the answer's body is not read: nothing of it is kept or shown
                reply = Reply(exc.code, exc.headers)
        except Exception as exc:
            # Cut short by the watchdog, whatever the library made of it (a reset, a short
            # read, "remote end closed"), or the last read's own timeout at the same moment.
            if watchdog.fired or time.monotonic() >= ends_at:
                raise late from exc
            raise
        watchdog.disarm()
        # A socket shut down mid-headers reads as their end: http.client then hands over a
        # "complete" answer (the status line and the headers so far). Not an answer.
        if watchdog.fired:
            raise late
        return reply


def failure(exc: BaseException) -> str:
    """What went wrong with a request, in words that never repeat what the receiver sent:
    the error's type, with its message for errors of this side (the network, TLS, the
    deadline), but not for an answer that is not HTTP (its message quotes the receiver's
    bytes, which the client would then read in the job)."""
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return failure(exc.reason)
    if isinstance(exc, http.client.HTTPException) and not isinstance(exc, http.client.RemoteDisconnected):
        return f"{type(exc).__name__}: the answer is not valid HTTP"
    return f"{type(exc).__name__}: {exc}"
