"""``demo_receiver``: a small HTTP API that receives ``migrate_rows`` batches, as the README's
walkthrough and the tests use it. It stores rows by key in memory and honours
``Idempotency-Key`` as a real API would: a key it has already acknowledged is answered
200 again without storing anything twice. ``GET /`` tells what it holds. Not for
production: everything is lost when it stops."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

#: Largest batch body accepted (bytes).
BODY_MAX = 64 * 1024 * 1024


class Receiver:
    """Stores the rows of each batch by ``row[key_field]``; a repeated Idempotency-Key is
    acknowledged without storing again. ``outage_after``/``outage_seconds``: once it holds
    that many rows it answers 503 for that long (once), like a target going down for a
    while; :meth:`fail_for` starts such an outage now. ``delay``: seconds it takes over
    each batch (a slow API: a migration to watch). Thread-safe."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        key_field: str = "id",
        outage_after: int | None = None,
        outage_seconds: float = 0.0,
        delay: float = 0.0,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.key_field = key_field
        self.delay = delay
        self.outage_after = outage_after
        self.outage_seconds = outage_seconds
        self.report = report
        self.lock = threading.Lock()
        self.rows: dict[Any, dict[str, Any]] = {}
        self.acknowledged: set[str] = set()
        #: Every batch that arrived, in order: its key range, size and what it was answered.
        self.batches: list[dict[str, Any]] = []
        self.duplicates = 0  # rows stored under a key that was already there
        self.failing_until = 0.0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(200, receiver.summary())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > BODY_MAX:
                    self._answer(413, {"detail": f"at most {BODY_MAX} bytes"})
                    return
                body = self.rfile.read(length)
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, answer = receiver.receive(self.headers.get("Idempotency-Key"), body)
                self._answer(status, answer)
                self.wfile.flush()
                receiver.answered(status, answer)

            def _answer(self, status: int, answer: dict[str, Any]) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- what it does with a batch ------------------------------------------------------------
    def receive(self, idempotency_key: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        """The answer to one POST: status and JSON body."""
        try:
            batch = json.loads(body)
            rows = batch["rows"]
            keys = [row[self.key_field] for row in rows]
        except (ValueError, TypeError, KeyError):
            return 400, {"detail": f'expected {{"rows": [{{"{self.key_field}": …}}, …], "batch": {{…}}}}'}
        if not idempotency_key:
            return 400, {"detail": "an Idempotency-Key header is required"}
        record = {"key": idempotency_key, "rows": len(rows), "first": keys[0] if keys else None}
        record |= {"last": keys[-1] if keys else None, "at": time.time()}
        with self.lock:
            now = time.monotonic()
            if self.outage_after is not None and len(self.rows) >= self.outage_after:
                self.outage_after = None
                self.failing_until = now + self.outage_seconds
            if now < self.failing_until:
                status, answer = 503, {"detail": "unavailable for a while; try again later"}
            elif idempotency_key in self.acknowledged:
                status, answer = 200, {"replayed": True, "stored": 0}
            else:
                for key, row in zip(keys, rows, strict=True):
                    self.duplicates += key in self.rows
                    self.rows[key] = row
                self.acknowledged.add(idempotency_key)
                status, answer = 200, {"replayed": False, "stored": len(rows)}
            self.batches.append({**record, "status": status, "replayed": answer.get("replayed", False)})
            held = len(self.rows)
        if self.report is not None:
            what = "replayed" if answer.get("replayed") else "stored" if status == 200 else f"answered {status}"
            self.report(f"batch {keys[0] if keys else '-'}…{keys[-1] if keys else '-'}: {what} (holding {held} rows)")
        return status, answer

    def answered(self, status: int, answer: dict[str, Any]) -> None:
        """Called once an answer is sent (a test kills the sender's worker here: between the
        2xx and the sender's checkpoint)."""

    def fail_for(self, seconds: float) -> None:
        """Answer 503 to every batch for ``seconds`` from now."""
        with self.lock:
            self.failing_until = time.monotonic() + seconds

    def summary(self) -> dict[str, Any]:
        with self.lock:
            keys = list(self.rows)
            return {
                "rows": len(keys),
                "min_key": min(keys, default=None),
                "max_key": max(keys, default=None),
                "batches": len(self.batches),
                "stored": sum(1 for b in self.batches if b["status"] == 200 and not b["replayed"]),
                "replayed": sum(1 for b in self.batches if b["replayed"]),
                "refused": sum(1 for b in self.batches if b["status"] != 200),
                "duplicates": self.duplicates,
            }

    # -- running --------------------------------------------------------------------------------
    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


class Command(BaseCommand):
    help = (
        "Run a demo HTTP API receiving migrate_rows batches: stores rows by key in memory, honours "
        "Idempotency-Key; GET / shows what it holds (Ctrl-C stops it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=9000, help="Port (default 9000).")
        parser.add_argument("--key", default="id", help="The row field rows are stored by (default id).")
        parser.add_argument(
            "--outage-after", type=int, metavar="ROWS", help="Answer 503 once it holds this many rows …"
        )
        parser.add_argument(
            "--outage-seconds", type=float, default=10.0, metavar="S", help="… for this long (default 10)."
        )
        parser.add_argument(
            "--delay", type=float, default=0.0, metavar="S", help="Take this long over each batch (a slow API)."
        )
        parser.add_argument("--quiet", action="store_true", help="No line per batch.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            receiver = Receiver(
                host=options["host"],
                port=options["port"],
                key_field=options["key"],
                outage_after=options["outage_after"],
                outage_seconds=options["outage_seconds"],
                delay=options["delay"],
                report=None if options["quiet"] else self.stdout.write,
            )
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from exc
        self.stdout.write(f"demo receiver on {receiver.url}/ (rows by {options['key']!r}); Ctrl-C stops it")
        with receiver:
            try:
                receiver.thread.join()
            except KeyboardInterrupt:
                self.stdout.write(json.dumps(receiver.summary()))
