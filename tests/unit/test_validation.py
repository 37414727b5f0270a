"""The create request's checks, exactly as the published JSON Schema states them: each
param's JSON type as sent (DRF alone would turn "5" into 5), then the field's own rules;
every fault named by its field, with a message that says how to fix it."""

from __future__ import annotations

import json

import pytest
from rest_framework import serializers

from jobs import services
from jobs.exceptions import InvalidInput
from jobs.registry import JobType


class EveryKind(JobType):
    name = "test_every_kind"

    class Params(serializers.Serializer):
        count = serializers.IntegerField(required=False)
        ratio = serializers.FloatField(required=False)
        price = serializers.DecimalField(max_digits=6, decimal_places=2, required=False)
        flag = serializers.BooleanField(required=False)
        mode = serializers.ChoiceField(choices=["fast", "slow"], required=False)
        label = serializers.CharField(required=False)
        tags = serializers.ListField(child=serializers.CharField(), required=False)
        extra = serializers.DictField(required=False)
        note = serializers.CharField(required=False, allow_null=True)
        needed = serializers.IntegerField(required=False, min_value=1)


def errors(params: dict) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as refused:
        EveryKind.validate_params(params)
    return refused.value.errors


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"count": "5"}, "Must be an integer."),
        ({"count": 2.5}, "Must be an integer."),
        ({"count": True}, "Must be an integer."),
        ({"ratio": "0.5"}, "Must be a number."),
        ({"ratio": False}, "Must be a number."),
        ({"price": "9.99"}, "Must be a number."),
        ({"flag": 1}, "Must be true or false."),
        ({"flag": "true"}, "Must be true or false."),
        ({"mode": "medium"}, "Must be one of: fast, slow."),
        ({"mode": ["fast"]}, "Must be one of: fast, slow."),
        ({"label": 5}, "Must be a string."),
        ({"tags": "a,b"}, "Must be a list."),
        ({"extra": ["k", "v"]}, "Must be an object."),
        ({"count": None}, "This field may not be null."),
    ],
)
def test_a_value_of_the_wrong_json_type_is_refused_naming_the_param(params, expected):
    [(name, _)] = params.items()
    assert errors(params) == {f"params.{name}": [expected]}


def test_values_of_the_right_json_type_are_stored_as_validated():
    params = {
        "count": 3.0,  # an integer by the schema: stored as 3
        "ratio": 1,
        "price": 9.5,
        "flag": False,
        "mode": "slow",
        "label": "x",
        "tags": ["a"],
        "extra": {"k": 1},
        "note": None,  # this one allows null
    }
    validated = EveryKind.validate_params(params)
    assert validated["count"] == 3 and isinstance(validated["count"], int)
    assert validated["flag"] is False and validated["note"] is None and validated["tags"] == ["a"]


def test_the_fields_own_rules_apply_after_the_type_and_missing_ones_are_named():
    class Required(JobType):
        name = "test_required"

        class Params(serializers.Serializer):
            n = serializers.IntegerField(min_value=1)
            label = serializers.CharField(max_length=3, required=False)

    with pytest.raises(InvalidInput) as refused:
        Required.validate_params({"label": "long"})
    assert refused.value.errors == {
        "params.n": ["This field is required."],
        "params.label": ["Ensure this field has no more than 3 characters."],
    }
    assert errors({"needed": 0}) == {"params.needed": ["Ensure this value is greater than or equal to 1."]}
    accepted = "count, ratio, price, flag, mode, label, tags, extra, note, needed"
    assert errors({"surprise": 1}) == {"params.surprise": [f"Unknown parameter; test_every_kind accepts: {accepted}."]}


# -- the whole create request ------------------------------------------------------------------
def request_errors(**fields) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as refused:
        services.job_request_validate({"type": "fibonacci", "params": {"n": 5}} | fields)
    return refused.value.errors


def test_a_valid_request_gets_the_types_defaults_and_the_default_queue():
    request = services.job_request_validate({"type": "fibonacci", "params": {"n": 5}})
    assert (request.params, request.metadata, request.queue, request.run_at) == ({"n": 5}, {}, "default", None)
    assert (request.max_attempts, request.timeout) == (3, 300)
    given = services.job_request_validate({"type": "fibonacci", "params": {"n": 5}, "max_attempts": 25, "timeout": 1})
    assert (given.max_attempts, given.timeout) == (25, 1)


@pytest.mark.parametrize("value", [None, "", 7, ["fibonacci"]])
def test_a_missing_or_malformed_type_is_named(value):
    [message] = request_errors(type=value)["type"]
    assert message.startswith("A job type is required; installed types: ") and message.endswith("(see GET /job-types).")


def test_an_unknown_type_and_an_unknown_queue_are_named():
    [message] = request_errors(type="nope")["type"]
    assert message.startswith("Unknown job type 'nope'; installed types: ") and "(see GET /job-types)" in message
    assert request_errors(queue="later")["queue"] == ["Unknown queue; use one of: default (JOBS_QUEUES)."]


@pytest.mark.parametrize("name", ["params", "metadata"])
@pytest.mark.parametrize("value", [[], "x", 5])
def test_params_and_metadata_must_be_objects(name, value):
    assert request_errors(**{name: value})[name] == ["Must be a JSON object."]


@pytest.mark.parametrize(
    ("metadata", "path", "message"),
    [
        ({"k": "a\x00b"}, "metadata.k", "Text may not contain the NUL character."),
        ({"k": "\ud800"}, "metadata.k", "Text must be valid Unicode."),
        ({"k\x00": 1}, "metadata", "Text may not contain the NUL character."),
        ({"k": [1, float("nan")]}, "metadata.k[1]", "Numbers must be finite."),
        ({"k": {"deeper": float("inf")}}, "metadata.k.deeper", "Numbers must be finite."),
    ],
)
def test_values_jsonb_cannot_store_are_named_by_their_path(metadata, path, message):
    assert request_errors(metadata=metadata) == {path: [message]}


def test_nesting_is_bounded():
    def nested(depth: int) -> dict:
        value: dict = {}
        for _ in range(depth):
            value = {"a": value}
        return value

    request = services.job_request_validate({"type": "fibonacci", "params": {"n": 5}, "metadata": nested(64)})
    assert request.metadata == nested(64)
    deeper = request_errors(metadata=nested(65))
    assert deeper and all(messages == ["Nested deeper than 64 levels."] for messages in deeper.values())
    assert min(path.count(".") for path in deeper) == 64  # named where it goes too deep


def test_metadata_is_bounded_in_bytes_as_compact_utf8():
    limit = 64 * 1024
    fits = {"k": "é" * ((limit - len('{"k":""}')) // 2)}  # two bytes each
    services.job_request_validate({"type": "fibonacci", "params": {"n": 5}, "metadata": fits})
    assert len(json.dumps(fits, separators=(",", ":"), ensure_ascii=False).encode()) == limit
    too_big = {"k": fits["k"] + "a"}
    assert request_errors(metadata=too_big) == {"metadata": [f"Metadata is {limit + 1} bytes; the limit is {limit}."]}


@pytest.mark.parametrize(("name", "limit"), [("max_attempts", 25), ("timeout", 7200)])
def test_whole_numbers_within_their_bounds(name, limit):
    for good in (1, limit):
        services.job_request_validate({"type": "fibonacci", "params": {"n": 5}, name: good})
    for bad in (0, -1, limit + 1):
        assert request_errors(**{name: bad}) == {name: [f"Must be from 1 to {limit}."]}
    for bad in (True, 2.0, "3"):
        assert request_errors(**{name: bad}) == {name: ["Must be an integer."]}


def test_run_at_is_an_instant_with_a_zone_within_the_schedule_window():
    from datetime import UTC, datetime, timedelta

    soon = datetime.now(UTC) + timedelta(days=1)
    request = services.job_request_validate(
        {"type": "fibonacci", "params": {"n": 5}, "run_at": soon.astimezone().isoformat()}
    )
    assert request.run_at == soon and request.run_at.utcoffset() == timedelta(0)
    assert request_errors(run_at="tomorrow") == {
        "run_at": ["Give an ISO 8601 date and time, e.g. 2030-01-01T09:00:00Z."]
    }
    assert request_errors(run_at="2030-01-01T09:00:00") == {"run_at": ["Give a time zone (Z or ±hh:mm)."]}
    window = ["Give a time from 2000-01-01 to 366 days from now."]
    assert request_errors(run_at="1999-12-31T23:59:59Z") == {"run_at": window}
    assert request_errors(run_at=(datetime.now(UTC) + timedelta(days=367)).isoformat()) == {"run_at": window}
    services.job_request_validate({"type": "fibonacci", "params": {"n": 5}, "run_at": "2000-01-01T00:00:00Z"})


def test_parse_instant_converts_to_utc_and_refuses_what_postgresql_cannot_hold():
    from datetime import UTC, datetime

    assert services.parse_instant("2030-01-01T09:00:00+02:00") == datetime(2030, 1, 1, 7, tzinfo=UTC)
    assert services.parse_instant("2030-01-01T09:00:00+02:00").tzinfo is UTC
    with pytest.raises(ValueError, match="Out of range"):
        services.parse_instant("0001-01-01T00:00:00+01:00")
    with pytest.raises(ValueError, match="time zone"):
        services.parse_instant(datetime(2030, 1, 1))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (5, "Give an http or https URL of at most 2000 characters."),
        ("https://hooks.example.com/" + "x" * 2000, "Give an http or https URL of at most 2000 characters."),
        ("ftp://hooks.example.com/x", "Give an http or https URL of at most 2000 characters."),
        ("https:///no-host", "Give an http or https URL of at most 2000 characters."),
        ("https://hooks.example.com/\x00", "Give an http or https URL of at most 2000 characters."),
        ("https://[::1/x", "Give an http or https URL of at most 2000 characters."),
        ("https://me:pw@hooks.example.com/x", "No user name or password in the URL: callbacks are signed instead."),
        ("https://me@hooks.example.com/x", "No user name or password in the URL: callbacks are signed instead."),
        (
            "https://elsewhere.example.com/x",
            "Callbacks may only go to the hosts JOBS_CALLBACK_ALLOWED_HOSTS lists (hooks.example.com).",
        ),
    ],
)
def test_a_callback_url_is_checked_and_its_fault_named(settings, url, message):
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["hooks.example.com"]
    assert request_errors(callback_url=url) == {"callback_url": [message]}


def test_an_allowed_callback_url_is_kept_and_its_host_matched_without_case(settings):
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["hooks.example.com"]
    url = "https://Hooks.Example.com/" + "x" * (2000 - len("https://Hooks.Example.com/"))
    kept = services.job_request_validate({"type": "fibonacci", "params": {"n": 5}, "callback_url": url})
    assert kept.callback_url == url
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = []
    assert request_errors(callback_url=url) == {
        "callback_url": ["Callbacks may only go to the hosts JOBS_CALLBACK_ALLOWED_HOSTS lists (none)."]
    }


def test_every_fault_is_named_at_once_unknown_fields_first():
    with pytest.raises(InvalidInput) as refused:
        services.job_request_validate(
            {"type": "fibonacci", "params": {"n": "5"}, "metadata": [], "max_attempts": 0},
            unknown_fields=["colour", "size"],
        )
    assert list(refused.value.errors) == ["colour", "size", "metadata", "max_attempts", "params.n"]
    assert refused.value.errors["colour"] == [
        "Unknown field; a job accepts: type, queue, params, metadata, max_attempts, timeout, run_at, callback_url."
    ]
    assert str(refused.value) == "The request is invalid."


# -- tokens -----------------------------------------------------------------------------------
def test_token_scopes_default_known_and_refused():
    from jobs.domain import DEFAULT_SCOPES, Scope

    assert services.token_scopes(None) == DEFAULT_SCOPES
    assert services.token_scopes(["admin", "admin"]) == {Scope.ADMIN}
    with pytest.raises(InvalidInput) as unknown:
        services.token_scopes(["jobs:read", "root", "sudo"])
    assert unknown.value.errors == {"scopes": ["Unknown scope 'root', 'sudo'; use jobs:read, jobs:write, admin."]}
    with pytest.raises(InvalidInput) as none:
        services.token_scopes([])
    assert none.value.errors == {"scopes": ["Give at least one scope; use jobs:read, jobs:write, admin."]}


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "a\x00b"])
def test_an_application_name_is_1_to_100_characters(store, name):
    with pytest.raises(InvalidInput) as refused:
        services.token_issue(app_name=name)
    assert refused.value.errors == {"name": ["Give an application name of 1 to 100 characters."]}
    store.fetch_one.assert_not_called()


def test_a_token_is_issued_for_the_stripped_name_with_its_scopes(store):
    import uuid

    app = {"id": uuid.uuid4(), "name": "x" * 100}
    store.fetch_one.side_effect = [
        app,
        {"id": uuid.uuid4(), "prefix": "jp_abcdefg", "created_at": None, "revoked_at": None, "scopes": ["admin"]},
    ]
    token, record = services.token_issue(app_name=f"  {'x' * 100} ", scopes=["admin"])
    (first, first_kwargs), (second, second_kwargs) = [(c.args[0], c.kwargs) for c in store.fetch_one.call_args_list]
    assert first == "app_get_or_create" and first_kwargs == {"name": "x" * 100}
    assert second == "token_create" and second_kwargs["app_id"] == app["id"] and second_kwargs["scopes"] == "admin"
    assert token.startswith("jp_") and len(token) > 40 and second_kwargs["prefix"] == token[:10]
    assert record.app_name == "x" * 100


@pytest.mark.parametrize("key", ["k" * 255, "~!", "a"])
def test_an_idempotency_key_of_printable_ascii_is_stored_with_the_job(store, job_queue, fake_app, key):
    from tests.conftest import make_job

    job = make_job(app_id=fake_app.id)
    row = {field: getattr(job, field) for field in job.__dataclass_fields__} | {"status": "queued"}
    store.fetch_one.side_effect = [None, row]  # no earlier job with this key; then the insert
    _, created = services.job_create(app=fake_app, type="fibonacci", params={"n": 5}, idempotency_key=key)
    assert created and store.fetch_one.call_args.kwargs["idempotency_key"] == key


@pytest.mark.parametrize("key", ["", "k" * 256, "a b", "é", "tab\t"])
def test_an_idempotency_key_is_1_to_255_printable_ascii_characters(store, job_queue, fake_app, key):
    with pytest.raises(InvalidInput) as refused:
        services.job_create(app=fake_app, type="fibonacci", params={"n": "5"}, idempotency_key=key)
    assert refused.value.errors == {
        "Idempotency-Key": ["Use 1 to 255 printable ASCII characters."],
        "params.n": ["Must be an integer."],
    }
    store.fetch_one.assert_not_called()
