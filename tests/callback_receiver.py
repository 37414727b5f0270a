"""A local HTTP receiver for completion callbacks (tests only): records what arrives and
answers with the status (and ``body``) it is told to, after ``delay`` seconds (a slow
receiver; it stops waiting when the receiver closes)."""

from __future__ import annotations

import http.server
import socketserver
import threading
from typing import Any, Self


class ServedInBackground:
    """A test server on its own thread: ``with`` starts it; leaving sets ``closing`` (so
    handlers still waiting give up) and shuts the server down."""

    server: socketserver.BaseServer
    thread: threading.Thread
    closing: threading.Event

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


class Receiver(ServedInBackground):
    def __init__(
        self,
        status: int = 200,
        location: str | None = None,
        *,
        delay: float = 0.0,
        host: str = "127.0.0.1",
        body: bytes = b"",
    ) -> None:
        self.status = status
        self.body = body
        self.location = location
        self.delay = delay
        self.received: list[dict[str, Any]] = []
        #: Requests that arrived (counted before the delay; ``received`` after it).
        self.arrived = 0
        self.closing = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.arrived += 1
                if receiver.delay and receiver.closing.wait(receiver.delay):
                    return  # closing: drop the connection unanswered
                receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        #: ``host`` may be another name for this machine (``localhost``): another host to
        #: the platform, which counts its deliveries per host.
        self.url = f"http://{host}:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
