"""A receiver that never finishes answering (tests only): it reads the request, sends a
status line, then one header line every ``interval`` seconds and never the blank line that
ends the headers. Each line arrives well within any per-read socket timeout, so only a
deadline on the whole exchange ends the request (the review's receiver sent one every 2 s)."""

from __future__ import annotations

import select
import socket
import socketserver
import ssl
import threading
import time
from pathlib import Path

from tests.callback_receiver import ServedInBackground


class DrippingReceiver(ServedInBackground):
    def __init__(
        self,
        *,
        interval: float = 0.4,
        lines: int = 1000,
        host: str = "127.0.0.1",
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """``tls``: a certificate and its key, to answer over HTTPS."""
        self.interval = interval
        self.lines = lines
        #: One entry per request: when it arrived and when the platform hung up (monotonic).
        self.requests: list[dict[str, float | None]] = []
        self.closing = threading.Event()
        receiver = self
        context = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                entry: dict[str, float | None] = {"arrived": time.monotonic(), "closed": None}
                receiver.requests.append(entry)
                sock: socket.socket = self.request
                if context is not None:
                    try:
                        sock = context.wrap_socket(sock, server_side=True)
                    except OSError:
                        return
                data = b""
                while b"\r\n\r\n" not in data:  # the request's head; its body is not waited for
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                try:
                    sock.sendall(b"HTTP/1.1 200 OK\r\n")
                    next_line = time.monotonic() + receiver.interval
                    sent = 0
                    while sent < receiver.lines and not receiver.closing.is_set():
                        # Waiting for the next line, watch the socket: the platform hanging up
                        # (a FIN, read as b"") is noticed at once, not at the next send.
                        wait = min(0.05, max(0.0, next_line - time.monotonic()))
                        if select.select([sock], [], [], wait)[0] and not sock.recv(65536):
                            return
                        if time.monotonic() >= next_line:
                            sock.sendall(f"X-Drip-{sent}: still answering\r\n".encode())
                            sent += 1
                            next_line += receiver.interval
                except OSError:
                    pass  # the platform hung up: what a deadline does
                finally:
                    entry["closed"] = time.monotonic()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
