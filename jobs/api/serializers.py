"""API input validation and output shapes. No business rules here."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from jobs.conf import settings
from jobs.domain import Job, JobEvent


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo ('metdata') is an error, not a silent drop."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class JobCreateInput(StrictSerializer):
    type = serializers.CharField(max_length=100, help_text="A registered job type (see /job-types).")
    params = serializers.DictField(required=False, default=dict, help_text="The type's inputs.")
    metadata = serializers.DictField(required=False, default=dict, help_text="Free JSON object, returned as sent.")
    max_attempts = serializers.IntegerField(required=False, min_value=1)
    timeout = serializers.IntegerField(required=False, min_value=1, help_text="Seconds per attempt.")
    run_at = serializers.DateTimeField(required=False, help_text="Do not start before this time (ISO 8601).")

    def validate_max_attempts(self, value: int) -> int:
        if value > settings.MAX_ATTEMPTS_LIMIT:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {settings.MAX_ATTEMPTS_LIMIT}."
            )
        return value

    def validate_timeout(self, value: int) -> int:
        if value > settings.MAX_TIMEOUT:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {settings.MAX_TIMEOUT}.")
        return value


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
