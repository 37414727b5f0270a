from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings

from .harness import Platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    """A private database (migrated) with a real gunicorn, for one test module."""
    server = settings.DATABASES["default"]
    instance = Platform(server, tmp_path_factory.mktemp("e2e-logs"))
    instance.create_database()
    try:
        instance.start_web()
        yield instance
    finally:
        instance.stop_all()
        instance.drop_database()
