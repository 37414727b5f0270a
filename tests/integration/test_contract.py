"""The contract a client reads is the contract the API keeps: params validate exactly
as /job-types' JSON Schema says, every fault is named at once, unknown query
parameters are errors, run_at comes back as sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from jobs import services
from jobs.exceptions import InvalidInput
from jobs.registry import registry

#: Values tried against every param of every built-in type: the schema and the validator
#: must give the same verdict on each (numbers at and past the bounds come from the schema).
PROBES = ["5", "", True, False, None, [], {}, 1.5, 1e6, 0, -1, 10**12, "fibonacci"]


def probes_for(schema: dict) -> list:
    values = list(PROBES)
    for bound in ("minimum", "maximum"):
        if bound in schema:
            values += [schema[bound], schema[bound] - 1, schema[bound] + 1, float(schema[bound])]
    return values


def accepted_by_validator(job_type, params) -> bool:
    try:
        job_type.validate_params(params)
    except InvalidInput:
        return False
    return True


@pytest.mark.parametrize("name", ["fibonacci", "pi", "countdown"])
def test_schema_and_validator_agree_on_every_value(name):
    job_type = registry.get(name)
    schema = job_type.params_schema()
    required = {field: schema["properties"][field].get("minimum", 1) for field in schema.get("required", [])}
    disagreements = []
    for field, field_schema in schema["properties"].items():
        for value in probes_for(field_schema):
            params = {**required, field: value}
            by_schema = jsonschema.Draft202012Validator(schema).is_valid(params)
            if by_schema != accepted_by_validator(job_type, params):
                disagreements.append((field, value, "schema says", by_schema))
    assert disagreements == []
    # Sanity: the probes include both verdicts for every field.
    assert not jsonschema.Draft202012Validator(schema).is_valid({**required, "unknown": 1})
    assert not accepted_by_validator(job_type, {**required, "unknown": 1})


def test_the_stored_params_are_the_validated_values(api):
    created = api.post(
        "/jobs", data=json.dumps({"type": "fibonacci", "params": {"n": 1e6}}), content_type="application/json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["params"] == {"n": 1000000}
    assert api.get(created["Location"]).content.count(b'"n":1000000') == 1  # an integer, not 1000000.0


@pytest.mark.parametrize("value", ["5", True, 5.5])
def test_strings_booleans_and_fractions_are_not_integers(api, value):
    response = api.post(
        "/jobs", data=json.dumps({"type": "countdown", "params": {"seconds": value}}), content_type="application/json"
    )
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["params.seconds"]


def test_every_fault_is_named_at_once(api, raw):
    raw.execute("SELECT count(*) FROM jobs_job")
    before = raw.fetchone()[0]
    body = {"type": "fibonacci", "params": {"n": -1}, "metdata": {}, "max_attempts": 0, "run_at": "soon"}
    response = api.post("/jobs", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == ["max_attempts", "metdata", "params.n", "run_at"]
    raw.execute("SELECT count(*) FROM jobs_job")
    assert raw.fetchone()[0] == before


def test_a_command_or_plugin_cannot_create_what_the_api_refuses(app):
    """The limits live in the create service, whoever calls it."""
    with pytest.raises(InvalidInput) as info:
        services.job_create(
            app=app,
            type="fibonacci",
            params={"n": 1},
            metadata={"blob": "x" * 70_000},
            timeout=10**6,
            max_attempts=10**3,
        )
    assert set(info.value.errors) == {"metadata", "timeout", "max_attempts"}


@pytest.mark.parametrize("query", ["stauts=succeeded", "types=pi", "page=2", "metadata=x"])
def test_unknown_query_parameters_are_400_naming_them(api, query):
    response = api.get(f"/jobs?{query}")
    assert response.status_code == 400, response.content
    assert [e["field"] for e in response.json()["errors"]] == [query.split("=")[0]]


SOON = datetime.now(UTC) + timedelta(days=30)


@pytest.mark.parametrize(
    "sent",
    [SOON.strftime("%Y-%m-%dT%H:%M:%SZ"), (SOON + timedelta(days=1)).strftime("%Y-%m-%dT12:34:56.789+02:00")],
    ids=["utc", "offset-and-fraction"],
)
def test_run_at_comes_back_as_it_was_sent(api, sent):
    body = {"type": "fibonacci", "params": {"n": 1}, "run_at": sent}
    created = api.post("/jobs", data=json.dumps(body), content_type="application/json").json()
    returned = api.get(f"/jobs/{created['id']}").json()["run_at"]
    assert datetime.fromisoformat(returned) == datetime.fromisoformat(sent.replace("Z", "+00:00"))
    assert created["run_at"] == returned


def test_a_params_serializer_with_its_own_hooks_still_runs_them():
    """Types whose Params define validate_<field> or validate() are validated by DRF itself
    (the per-field shortcut is only for serializers that have no hooks)."""
    from rest_framework import serializers

    from jobs.registry import JobType

    class Even(JobType):
        name = "test_even"

        class Params(serializers.Serializer):
            n = serializers.IntegerField()
            label = serializers.CharField(default="x")

            def validate_n(self, value):
                if value % 2:
                    raise serializers.ValidationError("Must be even.")
                return value

    with pytest.raises(InvalidInput) as info:
        Even.validate_params({"n": 3})
    assert info.value.errors == {"params.n": ["Must be even."]}
    assert Even.validate_params({"n": 4}) == {"n": 4, "label": "x"}
    assert registry.get("countdown").validate_params({"seconds": 5}) == {"seconds": 5}


def test_a_serializer_with_hooks_names_its_faults_beside_an_unknown_parameter_each_once():
    from rest_framework import serializers

    from jobs.registry import JobType

    class Window(JobType):
        name = "test_window"

        class Params(serializers.Serializer):
            lo = serializers.IntegerField()
            hi = serializers.IntegerField(max_value=100)

            def validate(self, attrs):
                if attrs["lo"] > attrs["hi"]:
                    raise serializers.ValidationError("lo must not exceed hi.")
                return attrs

    def faults(params):
        with pytest.raises(InvalidInput) as info:
            Window.validate_params(params)
        return info.value.errors

    unknown = ["Unknown parameter; test_window accepts: lo, hi."]
    # Beside an unknown parameter the type's own rules, its cross-field check too, still run.
    assert faults({"lo": 5, "hi": 1, "z": 0}) == {"params.z": unknown, "params": ["lo must not exceed hi."]}
    assert faults({"lo": 1, "hi": 500, "z": 0}) == {
        "params.z": unknown,
        "params.hi": ["Ensure this value is less than or equal to 100."],
    }
    # "5" is not an integer: named once for that, and no cross-field verdict on DRF's 5.
    assert faults({"lo": "5", "hi": 1}) == {"params.lo": ["Must be an integer."]}


@pytest.mark.parametrize(
    "run_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1999-12-31T23:59:59Z", "+400 days"]
)
def test_a_run_at_out_of_range_is_400_and_stores_nothing(api, raw, run_at):
    if run_at == "+400 days":
        run_at = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    raw.execute("SELECT count(*) FROM jobs_job")
    before = raw.fetchone()[0]
    body = {"type": "fibonacci", "params": {"n": 1}, "run_at": run_at}
    response = api.post("/jobs", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    assert [e["field"] for e in response.json()["errors"]] == ["run_at"]
    raw.execute("SELECT count(*) FROM jobs_job")
    assert raw.fetchone()[0] == before


def test_the_browsable_apis_format_parameter_is_not_an_unknown_filter(api):
    response = api.get("/jobs?format=json&limit=1")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
