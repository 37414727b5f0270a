"""A job type's params: its ``Params`` serializer, checked exactly as the JSON Schema the
platform publishes for it (``GET /job-types``, ``/schema``) says.

A type declares its inputs as a Django REST framework serializer: the fields give the
schema and the per-field rules. This module is the one place that runs them, so the
services that create and run jobs need no DRF of their own.
"""

from __future__ import annotations

import functools
from typing import Any

from rest_framework import serializers
from rest_framework.fields import SkipField, empty

from .exceptions import InvalidInput, listing


def json_schema(params_class: type[serializers.Serializer]) -> dict[str, Any]:
    """The JSON Schema of a ``Params`` serializer (no property beyond its fields)."""
    from rest_framework.schemas.openapi import AutoSchema

    generator = AutoSchema()
    instance = params_class()
    schema = generator.map_serializer(instance)
    schema["additionalProperties"] = False
    for name, field in instance.fields.items():
        # DRF says only "object" for a dict; its values' rule is the child field's.
        if isinstance(field, serializers.DictField) and name in schema["properties"]:
            child = generator.map_field(field.child)
            generator.map_field_validators(field.child, child)
            schema["properties"][name]["additionalProperties"] = child
    return schema


def _json_type_error(field: serializers.Field, value: Any) -> str | None:
    """The published JSON Schema's type rule for one param, applied to the JSON value as
    sent: DRF alone would turn "5" into 5 and true into 1."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is None:
        return None if field.allow_null else "This field may not be null."
    if isinstance(field, serializers.IntegerField):
        integral = is_number and (isinstance(value, int) or float(value).is_integer())
        return None if integral else "Must be an integer."
    if isinstance(field, (serializers.FloatField, serializers.DecimalField)):
        return None if is_number else "Must be a number."
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Must be true or false."
    if isinstance(field, serializers.ChoiceField):
        known = isinstance(value, (str, int, float)) and value in field.choices
        return None if known else f"Must be one of: {', '.join(map(str, field.choices))}."
    if isinstance(field, serializers.CharField):
        return None if isinstance(value, str) else "Must be a string."
    if isinstance(field, serializers.ListField):
        return None if isinstance(value, list) else "Must be a list."
    if isinstance(field, serializers.DictField):
        return None if isinstance(value, dict) else "Must be an object."
    return None


@functools.cache
def _params_fields(params_class: type[serializers.Serializer]) -> dict[str, serializers.Field]:
    """A type's param fields, built once (DRF deep-copies them for every instance)."""
    return dict(params_class().fields)


@functools.cache
def _fields_suffice(params_class: type[serializers.Serializer]) -> bool:
    """Whether running each field's own validation is all the serializer would do: no
    ``validate``/``validate_<field>`` hooks, every field writable under its own name."""
    hooks = [
        name
        for name in dir(params_class)
        if (name == "validate" or name.startswith("validate_"))
        and getattr(params_class, name) is not getattr(serializers.Serializer, name, None)
    ]
    fields = _params_fields(params_class)
    return not hooks and all(f.source == name and not f.read_only for name, f in fields.items())


def _validate_fields(fields: dict[str, serializers.Field], params: dict[str, Any]) -> tuple[dict, dict]:
    """Each field's own validation, as the serializer runs it, without building one."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, field in fields.items():
        try:
            values[name] = field.run_validation(params.get(name, empty))
        except serializers.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, list) else [exc.detail]
            errors[f"params.{name}"] = [str(message) for message in detail]
        except SkipField:
            pass
    return values, errors


def _flat_errors(key: str, messages: Any) -> dict[str, list[str]]:
    """A field's errors keyed by path: a dict's (``DictField``, nested serializer) under
    ``<key>.<entry>``, so each message names the entry at fault."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for entry, inner in messages.items():
            flat.update(_flat_errors(key if entry == "non_field_errors" else f"{key}.{entry}", inner))
        return flat
    return {key: [str(m) for m in (messages if isinstance(messages, list) else [messages])]}


def unknown_parameter(fields: dict[str, serializers.Field], type_name: str) -> str:
    """What an unknown key in ``params`` is told: the parameters the type does accept."""
    accepted = [name for name, field in fields.items() if not field.read_only]
    if not accepted:
        return f"Unknown parameter; {type_name or 'this type'} takes no parameters."
    return f"Unknown parameter; {type_name or 'this type'} accepts: {listing(accepted)}."


def validate(
    params_class: type[serializers.Serializer],
    params: dict[str, Any],
    *,
    type_name: str = "",
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate params exactly as the type's published JSON Schema says; return the
    validated values (what is stored). Errors are keyed ``params.<field>``; an unknown one
    is told what ``type_name`` accepts. Every fault is named at once: the known fields'
    own rules run beside an unknown parameter or another field's JSON-type error (a field
    whose JSON type is wrong is named once, for that). ``context`` is the serializer's
    (its hooks read it)."""
    fields = _params_fields(params_class)
    errors: dict[str, list[str]] = {}
    unknown: list[str] | None = None  # one list for every unknown key (never mutated)
    mistyped: set[str] = set()  # known fields already at fault: their own rules would say it again
    for key, value in params.items():
        field = fields.get(key)
        if field is None:
            unknown = unknown or [unknown_parameter(fields, type_name)]
            errors[f"params.{key}"] = unknown
        elif (problem := _json_type_error(field, value)) is not None:
            errors[f"params.{key}"] = [problem]
            mistyped.add(key)
        elif isinstance(field, serializers.DictField):  # the schema's additionalProperties, per entry
            for entry, item in value.items():
                if (problem := _json_type_error(field.child, item)) is not None:
                    errors[f"params.{key}.{entry}"] = [problem]
                    mistyped.add(key)
    validated: dict[str, Any] = {}
    if _fields_suffice(params_class):
        checked = fields if not mistyped else {n: f for n, f in fields.items() if n not in mistyped}
        validated, own = _validate_fields(checked, params)
        errors.update(own)
    else:
        known = {key: value for key, value in params.items() if key in fields}
        serializer = params_class(data=known, context=context or {})
        if serializer.is_valid():
            validated = dict(serializer.validated_data)
        for field_name, messages in serializer.errors.items():
            if field_name in mistyped or (field_name == "non_field_errors" and mistyped):
                # Named already; and the type's own cross-field check ran on values DRF
                # coerced but the schema refuses ("5" for 5): its verdict is not the client's fault.
                continue
            key = "params" if field_name == "non_field_errors" else f"params.{field_name}"
            errors.update(_flat_errors(key, messages))
    if errors:
        raise InvalidInput(errors, "The params are invalid.")
    return validated
