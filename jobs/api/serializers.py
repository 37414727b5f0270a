"""API input validation (the output shapes are in ``jobs/resources.py``). No business rules here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from rest_framework import serializers

from jobs import services
from jobs.conf import settings
from jobs.domain import Status
from jobs.selectors import JobFilters

from .pagination import Cursor, decode_cursor


def whole_number(value: str, low: int, high: int) -> int:
    """A query parameter's whole number from ``low`` to ``high`` (digits only: no sign, no
    decimal point, no spaces), else a validation error saying so."""
    if not (value.isascii() and value.isdigit() and low <= int(value) <= high):
        raise serializers.ValidationError(f"Must be a whole number from {low} to {high}.")
    return int(value)


class StrictQuery(serializers.Serializer):
    """Query parameters where any name the serializer does not declare is an error naming
    it (a typo such as ``limt`` must not silently give the default). An empty value means
    the parameter is not given; DRF's own ``format`` is let through; NUL characters are
    refused."""

    #: Whether ``metadata.<key>`` names are filters (the job list's).
    metadata_filters = False

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        known: dict[str, str] = {}
        metadata: dict[str, str] = {}
        for name in data:
            values = data.getlist(name) if hasattr(data, "getlist") else [data[name]]
            # Several statuses are any of them; any other name repeated: the last one counts.
            value = ",".join(v for v in values if v) if name == "status" else values[-1]
            if "\x00" in name or "\x00" in value:
                errors[name.replace("\x00", "\\0")] = ["May not contain the NUL character."]
            elif self.metadata_filters and name.startswith("metadata.") and len(name) > len("metadata."):
                metadata[name[len("metadata.") :]] = value
            elif name == "format":  # DRF's own ?format=json|api (the browsable API's links)
                continue
            elif name not in self.fields:
                allowed = ", ".join([*self.fields, *(["metadata.<key>"] if self.metadata_filters else [])])
                errors[name] = [f"Unknown query parameter; use {allowed}."]
            elif value != "":  # an empty value means no filter
                known[name] = value
        try:
            values = super().to_internal_value(known)
        except serializers.ValidationError as exc:
            errors.update(exc.detail)  # type: ignore[arg-type]
            values = {}
        if errors:
            raise serializers.ValidationError(errors)
        return {**values, "metadata": metadata or None}


class PageQuery(StrictQuery):
    """The query parameters of a keyset page: ``limit`` and ``cursor``."""

    limit = serializers.CharField(required=False)
    cursor = serializers.CharField(required=False)

    def validate_limit(self, value: str) -> int:
        return whole_number(value, 1, settings.MAX_PAGE_SIZE)

    def validate_cursor(self, value: str) -> Cursor:
        try:
            return decode_cursor(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class AfterPageQuery(StrictQuery):
    """The query parameters of a page of a history, oldest first: ``after`` (an entry's id)
    and ``limit``; any other name is an error."""

    after = serializers.CharField(required=False)
    limit = serializers.CharField(required=False)

    def validate_after(self, value: str) -> int:
        return whole_number(value, 0, 2**63 - 1)

    def validate_limit(self, value: str) -> int:
        return whole_number(value, 1, settings.MAX_PAGE_SIZE)


#: Most batches on one page of ``GET /batches``: each comes with its jobs counted per
#: status (up to JOBS_BATCH_MAX jobs each), so a page costs what its batches hold.
BATCH_PAGE_MAX = 100


class BatchListQuery(PageQuery):
    """The query parameters of ``GET /batches``: a page (``limit`` up to
    :data:`BATCH_PAGE_MAX`), and ``app`` (an application's name) for admin tokens only."""

    app = serializers.CharField(max_length=100, required=False)

    def validate_limit(self, value: str) -> int:
        return whole_number(value, 1, BATCH_PAGE_MAX)


class JobListQuery(PageQuery):
    """The query parameters of ``GET /jobs``. Any other name is an error (a typo such
    as ``stauts`` must not silently list everything); ``metadata.<key>`` filters by a
    metadata value. ``status`` takes several statuses, comma-separated or repeated
    (``status=queued,running`` or ``status=queued&status=running``): any of them. ``batch``
    keeps one batch's jobs. ``app`` (an application's name) is for admin tokens only: the
    view's permissions answer 403 to any other token that sends it."""

    status = serializers.CharField(required=False)
    type = serializers.CharField(max_length=100, required=False)
    queue = serializers.CharField(max_length=50, required=False)
    created_after = serializers.CharField(required=False)
    created_before = serializers.CharField(required=False)
    batch = serializers.CharField(required=False)
    app = serializers.CharField(max_length=100, required=False)
    metadata_filters = True

    def list_filters(self) -> JobFilters:
        """The validated filters, as the list selectors take them."""
        data = self.validated_data
        names = ("status", "type", "queue", "created_after", "created_before", "batch")
        return JobFilters(metadata=data["metadata"], **{name: data.get(name) for name in names})

    def validate_status(self, value: str) -> list[Status]:
        statuses: list[Status] = []
        for part in value.split(","):
            try:
                status = Status(part.strip())
            except ValueError:
                allowed = ", ".join(s.value for s in Status)
                raise serializers.ValidationError(
                    f"Unknown status {part.strip()!r}; use one or more of: {allowed} (comma-separated)."
                ) from None
            if status not in statuses:
                statuses.append(status)
        return statuses

    def _instant(self, value: str) -> datetime:
        try:
            return services.parse_instant(value)
        except ValueError as exc:
            # A "+" not written as %2B arrives as a space.
            hint = " (in a URL, write + as %2B)" if " " in value else ""
            raise serializers.ValidationError(f"{exc}{hint}") from None

    def validate_created_after(self, value: str) -> datetime:
        return self._instant(value)

    def validate_created_before(self, value: str) -> datetime:
        return self._instant(value)

    def validate_batch(self, value: str) -> uuid.UUID:
        try:
            return uuid.UUID(value)
        except ValueError:
            raise serializers.ValidationError("Must be a batch's id (a UUID).") from None
