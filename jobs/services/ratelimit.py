"""Rate limits: requests per token, failed authentications per client address.

The counters are fixed windows in the UNLOGGED PostgreSQL table ``jobs_rate`` (queries in
``jobs/sql/rates.sql``; counting is a write, so it lives with the services), so every
gunicorn worker on every host counts against the same numbers. A window starts at the
first request it counts and lasts ``JOBS_RATE_LIMIT_WINDOW`` seconds. The API's token
check and the token's counter are one statement, so a limited request costs no extra
round trip. Who the client is: ``jobs.api.addresses``.

Clients learn the limits from the ``RateLimit-Policy`` and ``RateLimit`` header fields of
draft-ietf-httpapi-ratelimit-headers-10 (policy names are strings; ``q`` quota, ``w``
window, ``r`` remaining, ``t`` seconds until the window ends).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobs import db, selectors
from jobs.conf import settings
from jobs.domain import App
from jobs.exceptions import RateLimited

#: Policy names in the RateLimit header fields.
TOKEN_POLICY = "token"
FAILED_AUTH_POLICY = "failed-auth"


@dataclass(frozen=True)
class Window:
    """One counter's state after a request: ``hits`` counted in a window of ``window``
    seconds that ends in ``reset`` seconds, against a quota of ``limit``."""

    policy: str
    limit: int
    window: int
    hits: int
    reset: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.hits)

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.window}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset}',
        }

    def refusal(self) -> RateLimited:
        if self.policy == FAILED_AUTH_POLICY:
            message = (
                f"Too many failed authentication attempts from this address ({self.limit} per {self.window} s); "
                f"retry in {self.reset} s."
            )
        else:
            message = f"This token made more than {self.limit} requests in {self.window} s; retry in {self.reset} s."
        return RateLimited(message, retry_after=self.reset)


def _address_key(address: str) -> str:
    return f"auth:{address}"


# -- counting --------------------------------------------------------------------------------
def _window(policy: str, limit: int, row: dict[str, Any] | None, hits: str = "hits", reset: str = "reset") -> Window:
    window = int(settings.RATE_LIMIT_WINDOW)
    if row is None or row[hits] is None:
        return Window(policy, limit, window, 0, window)
    return Window(policy, limit, window, int(row[hits]), int(row[reset]))


@dataclass(frozen=True)
class TokenCheck:
    """What the API's authentication learned in its one round trip."""

    app: App | None
    #: The token's counter (this request counted), when per-token limits are on.
    token: Window | None
    #: The failed attempts of the client's address, when that limit is on.
    failures: Window | None

    @property
    def blocked(self) -> bool:
        """The address used up its failed attempts: no token is even looked at."""
        return self.failures is not None and self.failures.hits >= self.failures.limit

    @property
    def over_limit(self) -> bool:
        return self.token is not None and self.token.hits > self.token.limit


def token_check(*, token: str, address: str) -> TokenCheck:
    """Look the token up, count this request against it and read the address's failures."""
    token_limit = int(settings.RATE_LIMIT_REQUESTS)
    failed_limit = int(settings.RATE_LIMIT_FAILED_AUTH)
    if token_limit <= 0 and failed_limit <= 0:
        return TokenCheck(selectors.app_for_token(token=token), None, None)  # the plain lookup
    row = db.fetch_one_prepared(
        "rate_token_authenticate",
        token_hash=selectors.token_hash(token),
        count_token=token_limit > 0,
        address_key=_address_key(address) if failed_limit > 0 else None,
        window=int(settings.RATE_LIMIT_WINDOW),
    )
    assert row is not None
    app = App.from_row(row) if row["token_id"] is not None else None
    return TokenCheck(
        app,
        _window(TOKEN_POLICY, token_limit, row, "token_hits", "token_reset") if token_limit > 0 and app else None,
        _window(FAILED_AUTH_POLICY, failed_limit, row, "failed_hits", "failed_reset") if failed_limit > 0 else None,
    )


def token_hit(*, app: App) -> Window | None:
    """Count a request of a token authenticated another way (a browser session)."""
    limit = int(settings.RATE_LIMIT_REQUESTS)
    if limit <= 0:
        return None
    row = db.fetch_one("rate_hit", key=f"token:{app.token_id}", window=int(settings.RATE_LIMIT_WINDOW))
    return _window(TOKEN_POLICY, limit, row)


def per_job_problem(*, jobs: int) -> str | None:
    """Why ``jobs`` jobs can never be created in one request under the per-token limit
    (a batch counts one request per job), or None."""
    limit = int(settings.RATE_LIMIT_REQUESTS)
    if 0 < limit < jobs:
        return (
            f"A token may make {limit} requests per {settings.RATE_LIMIT_WINDOW} s (JOBS_RATE_LIMIT_REQUESTS) and a "
            f"batch counts one per job: send at most {limit} jobs per batch; this one has {jobs}."
        )
    return None


def charges(*, jobs: int) -> bool:
    """Whether a request creating ``jobs`` jobs counts more than its own request."""
    return int(settings.RATE_LIMIT_REQUESTS) > 0 and jobs > 1


def token_charge(*, app: App, jobs: int, check_only: bool = False) -> None:
    """Count a request that creates ``jobs`` jobs as ``jobs`` requests against its token:
    the ``jobs - 1`` its authentication did not count, only when they fit in the token's
    window (nothing counted otherwise). Over the limit: :class:`RateLimited`, with the
    seconds until the window ends, when a new one has room for them. ``check_only``: only
    refuse what cannot fit now (a read, before the work), count nothing."""
    if not charges(jobs=jobs):
        return
    limit = int(settings.RATE_LIMIT_REQUESTS)
    key, window = f"token:{app.token_id}", int(settings.RATE_LIMIT_WINDOW)
    if check_only:
        counted = _window(TOKEN_POLICY, limit, selectors.rate_window(key=key, window=window))
        if counted.hits + jobs - 1 <= limit:
            return
    elif db.fetch_one("rate_charge", key=key, n=jobs - 1, total=jobs, limit=limit, window=window) is not None:
        return
    else:
        counted = _window(TOKEN_POLICY, limit, selectors.rate_window(key=key, window=window))
    raise RateLimited(
        f"A batch counts one request per job against this token's limit of {limit} per {window} s: this one "
        f"needs {jobs}, and a request in this window may now create at most {counted.remaining}; retry in "
        f"{counted.reset} s.",
        retry_after=counted.reset,
    )


def token_window(*, app: App) -> Window | None:
    """The token's counter as it stands (None: the limit is off)."""
    limit = int(settings.RATE_LIMIT_REQUESTS)
    if limit <= 0:
        return None
    window = int(settings.RATE_LIMIT_WINDOW)
    return _window(TOKEN_POLICY, limit, selectors.rate_window(key=f"token:{app.token_id}", window=window))


def failures(*, address: str) -> Window | None:
    """The failed attempts counted against an address in its window (None: limit off)."""
    limit = int(settings.RATE_LIMIT_FAILED_AUTH)
    if limit <= 0:
        return None
    row = selectors.rate_window(key=_address_key(address), window=int(settings.RATE_LIMIT_WINDOW))
    return _window(FAILED_AUTH_POLICY, limit, row)


def failure_count(*, address: str) -> Window | None:
    """Count one failed authentication against an address (None: limit off)."""
    limit = int(settings.RATE_LIMIT_FAILED_AUTH)
    if limit <= 0:
        return None
    row = db.fetch_one("rate_hit", key=_address_key(address), window=int(settings.RATE_LIMIT_WINDOW))
    return _window(FAILED_AUTH_POLICY, limit, row)
