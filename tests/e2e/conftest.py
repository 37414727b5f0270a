from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings

from .harness import Platform, running_platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    """A private database (migrated) with a real gunicorn, for one test module."""
    with running_platform(settings.DATABASES["default"], tmp_path_factory.mktemp("e2e-logs")) as instance:
        yield instance
