"""Django's database cache, for processes that never end a request.

django-q2's sentinel saves its cluster's status through the cache every guard cycle,
for as long as the cluster lives, and nothing in that process closes a broken database
connection (Django does that around each web request only). After PostgreSQL restarts
or cuts the connection, every save fails on the dead connection and the cluster drops
out of qinfo, qmonitor, jobs_top and /ready until django-q2 happens to restart one of
its processes (which closes every connection; its pusher gives up 10 s after a failed
fetch). So before each cache operation, outside a transaction, this does what Django's
request cycle does: drop the connection if it is broken or too old. The next save opens
a new one, half a second later (tests/e2e/test_monitors.py proves the difference).
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import connections, router


class DatabaseCache(DjangoDatabaseCache):
    def _recover_connection(self, *, write: bool) -> None:
        route = router.db_for_write if write else router.db_for_read
        connection = connections[route(self.cache_model_class)]
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()

    def get_many(self, keys: Any, version: int | None = None) -> dict[str, Any]:
        self._recover_connection(write=False)
        return super().get_many(keys, version=version)

    def _base_set(self, mode: str, key: str, value: Any, timeout: Any = None) -> bool:
        self._recover_connection(write=True)
        return super()._base_set(mode, key, value, timeout)

    def _base_delete_many(self, keys: Any) -> bool:
        self._recover_connection(write=True)
        return super()._base_delete_many(keys)

    def has_key(self, key: str, version: int | None = None) -> bool:
        self._recover_connection(write=False)
        return super().has_key(key, version=version)

    def clear(self) -> None:
        self._recover_connection(write=True)
        super().clear()
