"""One exception tree for the platform. A class's docstring is its default message.

Two families hang under :class:`JobsError`:

- errors a *caller* gets (bad input, not found, conflict, database down), which the API
  turns into problem+json answers (``jobs.api.errors``);
- errors a *job* ends with (:class:`JobError`): what a client reads in ``job.error``.
  Every stored error is built by :func:`error_payload`, whose ``type`` is the
  exception's class name: ``WorkerLost``, ``JobTimeout``, … for the platform's own,
  the job code's own class name (``ValueError``, ``PermanentError``) otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .conf import settings

#: How many characters of names an error message lists before it says "and N more".
LISTING_BUDGET = 80


def listing(names: Sequence[str], *, budget: int = LISTING_BUDGET) -> str:
    """``"a, b, c"``; past ``budget`` characters ``"a, b and 198 more"``: an error
    message names what would have been accepted, and stays short however many there are."""
    shown: list[str] = []
    used = 0
    for name in names:
        if shown and used + len(name) > budget:
            break
        shown.append(name if len(name) <= budget else name[: budget - 1] + "…")
        used += len(shown[-1]) + 2
    rest = len(names) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest else "")


class JobsError(Exception):
    """A job platform error."""

    def __init__(self, message: str | None = None, **context: object) -> None:
        self.context = context
        super().__init__(message or (self.__doc__ or "").strip())


# -- for callers --------------------------------------------------------------------------
class DatabaseUnavailable(JobsError):
    """The database is unreachable."""


class DatabaseNotCreated(JobsError):
    """The platform's database does not exist and could not be created."""


class NotFound(JobsError):
    """No such resource."""


class JobNotFound(NotFound):
    """No job with this id."""


class PathNotFound(NotFound):
    """Not found."""

    @classmethod
    def trailing_slash(cls, path: str) -> PathNotFound:
        """A path that exists without its trailing slash: say which."""
        return cls(f"Not found: the API's paths take no trailing slash; use {path} instead.")


class BatchNotFound(NotFound):
    """No batch with this id."""


class AppNotFound(NotFound):
    """No application with this name."""


class TokenNotFound(NotFound):
    """No token with this id or prefix."""


class ScheduleNotFound(NotFound):
    """No schedule with this id."""


class ScopeRequired(JobsError):
    """This token lacks the scope this request needs."""

    def __init__(self, scope: str, message: str | None = None) -> None:
        super().__init__(message or f"This token lacks the '{scope}' scope this request needs.", required_scope=scope)


class RateLimited(JobsError):
    """Too many requests; retry later."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class Conflict(JobsError):
    """The resource is not in a state that allows this."""


class NeverDeleted(JobsError):
    """This resource is never deleted."""

    @classmethod
    def job(cls, path: str) -> NeverDeleted:
        return cls(f"Jobs are never deleted: to stop this one, cancel it with POST {path}/cancel.")

    @classmethod
    def batch(cls, path: str) -> NeverDeleted:
        return cls(f"Batches are never deleted: to stop this one's jobs, cancel it with POST {path}/cancel.")

    @classmethod
    def schedule(cls, path: str) -> NeverDeleted:
        return cls(f'A schedule is never deleted: end it with PATCH {path} and the body {{"state": "ended"}}.')


class JobAlreadyFinished(Conflict):
    """The job has already finished."""

    @classmethod
    def cancel_refused(cls, status: str) -> JobAlreadyFinished:
        """A cancel of a job that finished as ``status``: what can still be cancelled."""
        return cls(
            f"The job has already finished ({status}); only queued, scheduled or running jobs can be cancelled.",
            job_status=status,
        )


class BatchAlreadyFinished(Conflict):
    """Every job of the batch has already finished."""


class TokenAlreadyRevoked(Conflict):
    """The token was already revoked."""


class ScheduleEnded(Conflict):
    """The schedule is ended and can no longer change."""


class TooManySchedules(Conflict):
    """The application has as many schedules (not ended) as it may; end one first."""


class TooManyUnfinishedJobs(JobsError):
    """The application has as many unfinished jobs as it may; retry once some finish."""


class AlreadyExists(JobsError):
    """A record with this unique key already exists."""


class IdempotencyKeyReused(JobsError):
    """This Idempotency-Key was already used for a different request."""


class InvalidInput(JobsError):
    """The input is invalid."""

    def __init__(self, errors: dict[str, list[str]], message: str | None = None) -> None:
        self.errors = errors
        super().__init__(message)


def unknown_field(what: str, accepted: Sequence[str]) -> list[str]:
    """What an unknown field of a body is told: the fields ``what`` (``"a job"``) accepts.
    One list for every unknown field of a request (never mutated): 100,000 of them cost a
    dict, not 100,000 lists."""
    return [f"Unknown field; {what} accepts: {listing(accepted)}."]


class UnknownJobType(InvalidInput):
    """No job type with this name is installed."""

    #: Most characters of the unknown name the message echoes (the list after it must fit).
    NAME_ECHO = 40

    @classmethod
    def named(cls, name: str, installed: Sequence[str]) -> UnknownJobType:
        """The error for ``name``, naming the types that are installed and where to read them."""
        shown = name if len(name) <= cls.NAME_ECHO else name[: cls.NAME_ECHO - 1] + "…"
        types = f"installed types: {listing(installed)}" if installed else "no job type is installed"
        return cls({"type": [f"Unknown job type {shown!r}; {types} (see GET /job-types)."]})


class DuplicateJobType(JobsError):
    """A job type with this name is already registered."""


class JobNotFinished(Conflict):
    """The job has not finished yet."""


class StaleRun(JobsError):
    """This run no longer owns the job (its lease was lost or the job moved on)."""


# -- what a job ends with (job.error.type) -----------------------------------------------
class JobError(JobsError):
    """The job failed."""


class PermanentError(JobError):
    """Raise from ``run`` for an error that retrying cannot fix: the job fails at once."""


class JobCancelled(JobError):
    """The job's application asked for it to stop."""


class WorkerLost(JobError):
    """The worker running the attempt stopped responding (crashed, was killed, or hung)."""


class JobTimeout(JobError):
    """The attempt ran past the job's timeout."""


class InvalidResult(JobError):
    """The job returned a result that is not JSON."""


class InvalidParams(JobError):
    """The stored params no longer pass the job type's validation."""


class InvalidCheckpoint(PermanentError):
    """The job's checkpoint state is not storable JSON, or is over JOBS_CHECKPOINT_MAX_BYTES."""


#: The platform's own ``error.type`` values with their meaning (the README lists them).
ERROR_TYPES: dict[str, str] = {
    cls.__name__: " ".join((cls.__doc__ or "").split())
    for cls in (WorkerLost, JobTimeout, InvalidResult, InvalidParams, InvalidCheckpoint, UnknownJobType, PermanentError)
}


def error_payload(exc: BaseException) -> dict[str, Any]:
    """What a client sees of an error: its type and message, never a traceback."""
    name = type(exc).__name__
    return {"type": name, "message": (str(exc) or name)[: settings.ERROR_MESSAGE_MAX]}
