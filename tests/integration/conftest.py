"""Integration tests: the real PostgreSQL (DATABASE_URL or the embedded server)."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from jobs import selectors, services
from jobs.domain import App


def new_app(name: str | None = None) -> tuple[App, str]:
    token, _ = services.token_issue(app_name=name or f"app-{uuid.uuid4().hex[:12]}")
    app = selectors.app_for_token(token=token)
    assert app is not None
    return app, token


@pytest.fixture
def app_and_token(db) -> tuple[App, str]:
    return new_app()


@pytest.fixture
def app(app_and_token) -> App:
    return app_and_token[0]


@pytest.fixture
def api(app_and_token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {app_and_token[1]}")
    return client


@pytest.fixture
def raw(db):
    """A cursor for assertions on raw table state (the test's own transaction)."""
    from django.db import connection

    with connection.cursor() as cursor:
        yield cursor
