"""API input validation and output shapes. No business rules here."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from jobs.conf import settings
from jobs.domain import Job, JobEvent, Status

from .pagination import Cursor, decode_cursor


class JobListQuery(serializers.Serializer):
    """The query parameters of ``GET /jobs``. Any other name is an error (a typo such
    as ``stauts`` must not silently list everything); ``metadata.<key>`` filters by a
    metadata value. ``app`` (an application's name) is for admin tokens only: the view's
    permissions answer 403 to any other token that sends it."""

    status = serializers.CharField(required=False)
    type = serializers.CharField(max_length=100, required=False)
    limit = serializers.CharField(required=False)
    cursor = serializers.CharField(required=False)
    app = serializers.CharField(max_length=100, required=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        known: dict[str, str] = {}
        metadata: dict[str, str] = {}
        for name, value in data.items():
            if "\x00" in name or "\x00" in value:
                errors[name.replace("\x00", "\\0")] = ["May not contain the NUL character."]
            elif name.startswith("metadata.") and len(name) > len("metadata."):
                metadata[name[len("metadata.") :]] = value
            elif name not in self.fields:
                allowed = ", ".join([*self.fields, "metadata.<key>"])
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

    def validate_status(self, value: str) -> Status:
        try:
            return Status(value)
        except ValueError:
            raise serializers.ValidationError(f"Must be one of: {', '.join(s.value for s in Status)}.") from None

    def validate_limit(self, value: str) -> int:
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= settings.MAX_PAGE_SIZE):
            raise serializers.ValidationError(f"Must be a whole number from 1 to {settings.MAX_PAGE_SIZE}.")
        return int(value)

    def validate_cursor(self, value: str) -> Cursor:
        try:
            return decode_cursor(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


def job_url(request: Any, job_id: Any) -> str:
    path = reverse("jobs:job-detail", kwargs={"job_id": str(job_id)})
    return request.build_absolute_uri(path) if request is not None else path


def _timestamp(value: Any) -> str | None:
    return serializers.DateTimeField().to_representation(value) if value is not None else None


def job_output(job: Job, request: Any) -> dict[str, Any]:
    """The job resource (shared/DESIGN.md)."""
    return {
        "id": str(job.id),
        "url": job_url(request, job.id),
        "type": job.type,
        "params": job.params,
        "metadata": job.metadata,
        "status": job.status.value,
        "progress": job.progress,
        "result": job.result,
        "error": job.error,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "timeout": job.timeout_seconds,
        "cancel_requested": job.cancel_requested_at is not None,
        "run_at": _timestamp(job.run_at),
        "created_at": _timestamp(job.created_at),
        "started_at": _timestamp(job.started_at),
        "finished_at": _timestamp(job.finished_at),
        "updated_at": _timestamp(job.updated_at),
    }


def event_output(event: JobEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": _timestamp(event.at),
        "kind": event.kind,
        "attempt": event.attempt,
        "data": event.data,
    }
