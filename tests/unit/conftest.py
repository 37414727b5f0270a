"""Unit tests: no database, no worker. The store (jobs.db) and the queue (jobs.queue)
are replaced by mocks; pytest-django refuses any real database access here."""

from __future__ import annotations

from unittest import mock

import pytest
from rest_framework.test import APIClient

from jobs.domain import App

#: What the store (jobs.db) offers the services and selectors.
STORE_FUNCTIONS = ("fetch_one", "fetch_all", "fetch_one_prepared", "atomic", "as_json")


@pytest.fixture
def store():
    """The store (jobs.db) mocked for every service and selector; atomic() is a no-op."""
    fake = mock.MagicMock(name="jobs.db")
    fake.atomic.return_value.__enter__.return_value = None
    fake.atomic.return_value.__exit__.return_value = False
    fake.as_json.side_effect = lambda value: value
    with mock.patch.multiple("jobs.db", **{name: getattr(fake, name) for name in STORE_FUNCTIONS}):
        yield fake


@pytest.fixture
def job_queue():
    fake = mock.MagicMock(name="jobs.queue")
    fake.DEFAULT_QUEUE = "default"
    fake.queue_names.return_value = ["default"]
    fake.envelope.side_effect = lambda job_id, *, timeout, queue="default": {
        "envelope_key": "q",
        "envelope_payload": f"signed:{job_id}",
    }
    with mock.patch.multiple("jobs.queue", envelope=fake.envelope, queue_names=fake.queue_names):
        yield fake


@pytest.fixture
def api(fake_app: App, store, settings):
    """An API client whose token resolves to fake_app (authentication mocked). Rate limits
    are off: their counters live in the database (tests/integration/test_rate_limits.py)."""
    settings.JOBS = {**settings.JOBS, "RATE_LIMIT_REQUESTS": 0, "RATE_LIMIT_FAILED_AUTH": 0}
    with mock.patch(
        "jobs.api.auth.selectors.app_for_token", side_effect=lambda token: fake_app if token == "good" else None
    ):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION="Token good")
        yield api
