"""Job types and the registry that finds them.

A job type is a :class:`JobType` subclass decorated with ``@registry.register``.
Types are discovered from the ``jobtypes`` module (or package: every module in it)
of each installed Django app, and from the ``jobplatform.jobtypes`` entry point
group of installed distributions. Adding a type is one new module.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from rest_framework import serializers

from . import params as job_params
from .conf import settings
from .exceptions import DuplicateJobType, PermanentError, UnknownJobType

if TYPE_CHECKING:
    from .domain import App
    from .runtime.context import JobContext

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "jobplatform.jobtypes"


__all__ = ["ENTRY_POINT_GROUP", "JobType", "PermanentError", "Registry", "registry"]


class JobType:
    """Base class of every job type.

    Set ``name``, a ``Params`` serializer (validates and documents the inputs) and
    implement :meth:`run`. Optional: ``description`` (defaults to the docstring),
    ``timeout`` (seconds per attempt), ``max_attempts``, ``backoff_base`` and
    ``backoff_cap`` (seconds, exponential backoff with jitter between attempts).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Params: ClassVar[type[serializers.Serializer]] = serializers.Serializer
    timeout: ClassVar[int | None] = None
    max_attempts: ClassVar[int | None] = None
    backoff_base: ClassVar[float | None] = None
    backoff_cap: ClassVar[float | None] = None

    def run(self, ctx: JobContext, params: dict[str, Any]) -> Any:
        """Do the work and return a JSON-serialisable result.

        ``ctx.metadata`` holds the client's metadata; call ``ctx.progress()`` to
        report progress and ``ctx.raise_if_cancelled()`` (or ``ctx.sleep()``) at
        safe points. A run may be repeated (at-least-once): make it idempotent.
        A long run stores where it is with ``ctx.checkpoint(state)`` and starts from
        ``ctx.checkpoint_state`` (None the first time); ``ctx.log()`` writes the job's
        own log (docs/job-types.md).
        """
        raise NotImplementedError

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether an error raised by :meth:`run` deserves another attempt."""
        return not isinstance(exc, PermanentError)

    # -- derived values ------------------------------------------------------------
    @classmethod
    def get_description(cls) -> str:
        text = cls.description or (cls.__doc__ or "").strip()
        return " ".join(text.split())

    @classmethod
    def default_timeout(cls) -> int:
        return min(cls.timeout or settings.DEFAULT_TIMEOUT, settings.MAX_TIMEOUT)

    @classmethod
    def default_max_attempts(cls) -> int:
        return min(cls.max_attempts or settings.DEFAULT_MAX_ATTEMPTS, settings.MAX_ATTEMPTS_LIMIT)

    @classmethod
    def params_schema(cls) -> dict[str, Any]:
        """JSON Schema of the params, derived from the ``Params`` serializer."""
        return job_params.json_schema(cls.Params)

    @classmethod
    def validate_params(cls, values: dict[str, Any], *, app: App | None = None) -> dict[str, Any]:
        """``values`` checked against the ``Params`` serializer exactly as
        :meth:`params_schema` says; the validated values (what is stored and what
        :meth:`run` gets). Raises InvalidInput naming each ``params.<field>`` at fault.
        The serializer's ``context["app"]`` is ``app``, the application creating the job
        (None when the worker checks a stored job's params again)."""
        return job_params.validate(cls.Params, values, type_name=cls.name, context={"app": app})


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, type[JobType]] = {}

    def register(self, job_type: type[JobType]) -> type[JobType]:
        """Class decorator: add a job type. A second, different type with the same name is an error."""
        if not (isinstance(job_type, type) and issubclass(job_type, JobType)):
            raise TypeError(f"{job_type!r} is not a JobType subclass")
        name = getattr(job_type, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{job_type.__qualname__} needs a non-empty 'name'")
        existing = self._types.get(name)
        if existing is not None and _qualified(existing) != _qualified(job_type):
            raise DuplicateJobType(
                f"job type {name!r} is registered twice: {_qualified(existing)} and {_qualified(job_type)}"
            )
        self._types[name] = job_type
        return job_type

    def get(self, name: str) -> type[JobType]:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownJobType.named(name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._types)

    def all(self) -> list[type[JobType]]:
        return [self._types[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def reset(self) -> None:
        """Forget every type (tests)."""
        self._types.clear()

    def autodiscover(self) -> None:
        """Import every installed app's ``jobtypes`` and load entry point plugins."""
        from django.apps import apps

        for app_config in apps.get_app_configs():
            _import_jobtypes(app_config.name)
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = entry_point.load()
            except Exception:
                logger.exception("job type plugin %s failed to load", entry_point.value)
                continue
            if isinstance(loaded, type) and issubclass(loaded, JobType):
                self.register(loaded)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _import_jobtypes(app_module: str) -> None:
    module_name = f"{app_module}.jobtypes"
    if importlib.util.find_spec(app_module) is None:
        return
    try:
        spec = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:
        return
    if spec is None:
        return
    module = importlib.import_module(module_name)
    if hasattr(module, "__path__"):
        for info in pkgutil.iter_modules(module.__path__):
            importlib.import_module(f"{module_name}.{info.name}")


registry = Registry()
