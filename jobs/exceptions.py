"""One exception tree for the platform. A class's docstring is its default message."""

from __future__ import annotations


class JobsError(Exception):
    """A job platform error."""

    def __init__(self, message: str | None = None, **context: object) -> None:
        self.context = context
        super().__init__(message or (self.__doc__ or "").strip())


class DatabaseUnavailable(JobsError):
    """The database is unreachable."""


class NotFound(JobsError):
    """No such resource."""


class JobNotFound(NotFound):
    """No job with this id."""


class TokenNotFound(NotFound):
    """No token with this id or prefix."""


class Conflict(JobsError):
    """The resource is not in a state that allows this."""


class JobAlreadyFinished(Conflict):
    """The job has already finished."""


class AlreadyExists(JobsError):
    """A record with this unique key already exists."""


class IdempotencyKeyReused(JobsError):
    """This Idempotency-Key was already used for a different request."""


class InvalidInput(JobsError):
    """The input is invalid."""

    def __init__(self, errors: dict[str, list[str]], message: str | None = None) -> None:
        self.errors = errors
        super().__init__(message)


class UnknownJobType(InvalidInput):
    """Unknown job type."""


class DuplicateJobType(JobsError):
    """A job type with this name is already registered."""


class StaleRun(JobsError):
    """This run no longer owns the job (its lease was lost or the job moved on)."""


class ImproperlyConfiguredWorker(JobsError):
    """The worker settings cannot keep the platform's guarantees."""
