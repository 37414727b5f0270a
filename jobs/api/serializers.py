"""API input validation (the output shapes are in ``jobs/resources.py``). No business rules here."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from jobs.conf import settings
from jobs.domain import Status

from .pagination import Cursor, decode_cursor


class JobListQuery(serializers.Serializer):
    """The query parameters of ``GET /jobs``. Any other name is an error (a typo such
    as ``stauts`` must not silently list everything); ``metadata.<key>`` filters by a
    metadata value."""

    status = serializers.CharField(required=False)
    type = serializers.CharField(max_length=100, required=False)
    limit = serializers.CharField(required=False)
    cursor = serializers.CharField(required=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        known: dict[str, str] = {}
        metadata: dict[str, str] = {}
        for name, value in data.items():
            if "\x00" in name or "\x00" in value:
                errors[name.replace("\x00", "\\0")] = ["May not contain the NUL character."]
            elif name.startswith("metadata.") and len(name) > len("metadata."):
                metadata[name[len("metadata.") :]] = value
            elif name == "format":  # DRF's own ?format=json|api (the browsable API's links)
                continue
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
