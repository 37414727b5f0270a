"""migrate_rows without a database or a network: row mapping, keys, idempotency keys,
params validation and its messages, the target host rule, the sources setting, and the
batch loop (retries, refusals, resume) against a scripted source and target."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import orjson
import pytest
from django.core.exceptions import ImproperlyConfigured

from jobs.conf import host_list, named_sources
from jobs.domain import App
from jobs.exceptions import InvalidInput, PermanentError
from jobs.jobtypes import migrate_rows as mr
from jobs.registry import registry

PARAMS = {
    "source": "legacy",
    "table": "customers",
    "key": "id",
    "mapping": {"id": "id", "email": "email", "name": "full_name"},
    "target_url": "http://crm.internal:9000/import",
}


@pytest.fixture(autouse=True)
def configured(settings):
    settings.JOBS_SOURCES = {"legacy": "postgres://u:secret@db/legacy", "billing": "postgres://db/billing"}
    settings.JOBS_SOURCE_APPS = {"legacy": ("etl",), "billing": ("etl",)}
    settings.JOBS_MIGRATION_TARGET_HOSTS = ["crm.internal"]


@pytest.fixture(autouse=True)
def applications():
    """The job's application, as the worker's context names it (the type reads its name)."""
    names = {APP_ID: "etl"}
    with mock.patch.object(mr.selectors, "app_name_get", side_effect=lambda app_id: names.get(app_id)):
        yield names


APP_ID = uuid.UUID(int=42)


def plan(**overrides: Any) -> mr.Plan:
    return mr.Plan.from_params(registry.get("migrate_rows").validate_params({**PARAMS, **overrides}))


def errors_of(app: App | None = None, **overrides: Any) -> dict[str, list[str]]:
    params = {**PARAMS, **overrides}
    params = {k: v for k, v in params.items() if v is not None}
    with pytest.raises(InvalidInput) as info:
        registry.get("migrate_rows").validate_params(params, app=app)
    return info.value.errors


# -- rows ---------------------------------------------------------------------------------------
def test_source_values_become_json_exactly():
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert mr.json_value(Decimal("12.30")) == "12.30"  # exact, never a float
    assert mr.json_value(moment) == "2026-01-02T03:04:05+00:00"
    assert mr.json_value(date(2026, 1, 2)) == "2026-01-02"
    assert mr.json_value(timedelta(minutes=1, seconds=30)) == 90.0
    assert mr.json_value(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert mr.json_value(b"\x00\xff") == "AP8="
    assert mr.json_value(memoryview(b"ab")) == "YWI="
    assert mr.json_value(float("nan")) == "nan" and mr.json_value(float("-inf")) == "-inf"
    assert mr.json_value({"a": [Decimal("1"), None, True]}) == {"a": ["1", None, True]}
    assert [mr.json_value(v) for v in (None, True, 7, 1.5, "x")] == [None, True, 7, 1.5, "x"]


def test_a_row_is_mapped_to_the_declared_fields_with_its_transforms():
    p = plan(
        mapping={"id": "id", "email": "email", "name": "full_name", "code": "email", "joined": "created", "n": "n"},
        transforms={"email": "lower", "name": "trim", "code": "upper", "joined": "text", "n": "text"},
    )
    row = {"id": 7, "email": " Ann@Example.COM", "full_name": "  Ann  ", "created": date(2020, 5, 1), "n": None}
    assert mr.map_row(p, row) == {
        "id": 7,
        "email": " ann@example.com",
        "name": "Ann",
        "code": " ANN@EXAMPLE.COM",
        "joined": "2020-05-01",
        "n": None,  # null stays null, whatever the transform
    }
    assert mr.TRANSFORMS["text"][0](Decimal("1.50")) == "1.50" and mr.TRANSFORMS["text"][0](True) == "true"
    assert mr.TRANSFORMS["text"][0]({"a": 1}) == '{"a":1}'


def test_the_columns_read_are_the_key_then_each_mapped_column_once():
    p = plan(mapping={"a": "email", "b": "email", "c": "id", "d": "full_name"})
    assert p.columns == ["id", "email", "full_name"]
    assert p.keyset == "legacy:public.customers(id)"


# -- idempotency keys -----------------------------------------------------------------------------
def test_a_batch_idempotency_key_is_stable_and_names_what_the_batch_is():
    key = mr.batch_idempotency_key(plan(), first_key=1, last_key=500, rows=500)
    # The same batch of the same migration: the same key, whatever job or attempt sends it
    # and in whatever order the mapping was written (params come back from jsonb reordered).
    reordered = plan(mapping=dict(reversed(list(PARAMS["mapping"].items()))))
    assert mr.batch_idempotency_key(reordered, first_key=1, last_key=500, rows=500) == key
    assert key.startswith("migrate-") and len(key) == len("migrate-") + 48
    assert (
        key
        == "migrate-"
        + mr.hashlib.sha256(
            orjson.dumps(
                {**plan().identity(), "first_key": 1, "last_key": 500, "rows": 500}, option=orjson.OPT_SORT_KEYS
            )
        ).hexdigest()[:48]
    )
    others = {
        mr.batch_idempotency_key(plan(), first_key=501, last_key=1000, rows=500),
        mr.batch_idempotency_key(plan(), first_key=1, last_key=499, rows=499),
        mr.batch_idempotency_key(plan(mapping={"id": "id"}), first_key=1, last_key=500, rows=500),
        mr.batch_idempotency_key(plan(transforms={"email": "lower"}), first_key=1, last_key=500, rows=500),
        mr.batch_idempotency_key(plan(where_equals={"region": "eu"}), first_key=1, last_key=500, rows=500),
        mr.batch_idempotency_key(plan(source="billing"), first_key=1, last_key=500, rows=500),
        mr.batch_idempotency_key(plan(table="clients"), first_key=1, last_key=500, rows=500),
        mr.batch_idempotency_key(plan(), first_key="1", last_key="500", rows=500),  # a text key is another key
    }
    assert key not in others and len(others) == 8
    # Neither the target nor the batch size is part of what a batch is.
    assert mr.batch_idempotency_key(plan(batch_size=10), first_key=1, last_key=500, rows=500) == key


def test_a_batch_body_is_the_same_bytes_on_every_attempt():
    rows = [{"id": 1, "email": "a@x", "full_name": "A"}, {"id": 2, "email": "b@x", "full_name": "B"}]
    key = mr.batch_idempotency_key(plan(), first_key=1, last_key=2, rows=2)
    body = mr.batch_body(plan(), number=3, rows=rows, idempotency_key=key)
    reordered = plan(mapping=dict(reversed(list(PARAMS["mapping"].items()))))
    assert mr.batch_body(reordered, number=3, rows=rows, idempotency_key=key) == body
    assert orjson.loads(body) == {
        "rows": [{"id": 1, "email": "a@x", "name": "A"}, {"id": 2, "email": "b@x", "name": "B"}],
        "batch": {
            "number": 3,
            "first_key": 1,
            "last_key": 2,
            "rows": 2,
            "idempotency_key": key,
            "source": "legacy",
            "table": "public.customers",
        },
    }


# -- keys and checkpoints -------------------------------------------------------------------------
def test_resuming_continues_after_the_checkpoints_key():
    state = {"last_key": 1500, "rows_done": 1500, "batches_done": 3, "keyset": "legacy:public.customers(id)"}
    assert mr.resume_point(None, plan(), "bigint") == (None, 0, 0)
    assert mr.resume_point(state, plan(), "bigint") == (1500, 1500, 3)
    assert mr.resume_point({**state, "last_key": "k-9"}, plan(), "text") == ("k-9", 1500, 3)
    without_keyset = {k: v for k, v in state.items() if k != "keyset"}  # a checkpoint written by hand
    assert mr.resume_point(without_keyset, plan(), "integer") == (1500, 1500, 3)


@pytest.mark.parametrize(
    ("state", "key_type", "message"),
    [
        ({"done": 3}, "bigint", "is not one of migrate_rows"),
        ("abc", "bigint", "is not one of migrate_rows"),
        ({"last_key": 9, "rows_done": 9, "batches_done": 1, "keyset": "legacy:public.orders(id)"}, "bigint", "orders"),
        ({"last_key": "9", "rows_done": 9, "batches_done": 1}, "bigint", "not a value of the bigint key column"),
        ({"last_key": 9, "rows_done": 9, "batches_done": 1}, "uuid", "not a value of the uuid key column"),
        ({"last_key": True, "rows_done": 9, "batches_done": 1}, "integer", "not a value of the integer key column"),
    ],
)
def test_a_checkpoint_that_does_not_fit_fails_the_job_rather_than_skip_rows(state, key_type, message):
    with pytest.raises(PermanentError, match=message):
        mr.resume_point(state, plan(), key_type)


def test_supported_key_types_hold_their_values_in_json_exactly():
    assert mr.KEY_TYPES == {
        "smallint": int,
        "integer": int,
        "bigint": int,
        "text": str,
        "character varying": str,
        "uuid": str,
    }


# -- the target ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        *[(200, "ok"), (201, "ok"), (204, "ok")],
        *[(None, "retry"), (408, "retry"), (429, "retry"), (500, "retry"), (502, "retry"), (503, "retry")],
        *[(301, "refused"), (307, "refused"), (400, "refused"), (401, "refused"), (404, "refused")],
        *[(409, "refused"), (413, "refused"), (422, "refused")],
    ],
)
def test_what_each_answer_means(status, verdict):
    assert mr.Answer(status, "", None, 1).verdict == verdict


def test_the_wait_between_sends_doubles_honours_retry_after_and_is_capped(settings):
    settings.JOBS = {**settings.JOBS, "MIGRATION_TARGET_BACKOFF": 0.5}
    assert [mr.retry_delay(n) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert mr.retry_delay(0, "7") == 7.0 and mr.retry_delay(3, "1") == 4.0
    assert mr.retry_delay(0, "Wed, 21 Oct 2015 07:28:00 GMT") == 0.5  # a date: our own backoff
    assert mr.retry_delay(20) == mr.retry_delay(0, "3600") == mr.BACKOFF_CAP == 60.0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://crm.internal:9000/import", None),
        ("https://CRM.internal/x", None),
        ("http://10.0.0.5/import", "Migration targets may only go to the hosts JOBS_MIGRATION_TARGET_HOSTS lists"),
        ("http://crm.internal.evil.com/", "JOBS_MIGRATION_TARGET_HOSTS lists (crm.internal)"),
        ("http://user:pw@crm.internal/", "No user name or password in the URL: params are stored and shown"),
        ("ftp://crm.internal/", "Give an http or https URL"),
        ("http:///nohost", "Give an http or https URL"),
        ("http://crm.internal:99999/", "Give an http or https URL"),
        ("x" * 2001, "Give an http or https URL"),
    ],
)
def test_the_target_host_rule(url, message):
    problem = mr.target_problem(url)
    assert problem is None if message is None else message in problem


def test_the_target_rule_reads_its_own_setting_not_the_callbacks(settings):
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["hooks.example.com"]
    assert "(crm.internal)" in mr.target_problem("http://hooks.example.com/")
    settings.JOBS_MIGRATION_TARGET_HOSTS = []
    assert mr.target_problem("http://crm.internal/").endswith("JOBS_MIGRATION_TARGET_HOSTS lists (none).")


# -- params -----------------------------------------------------------------------------------
def test_valid_params_get_their_defaults():
    validated = registry.get("migrate_rows").validate_params(PARAMS)
    assert validated == {**PARAMS, "schema": "public", "transforms": {}, "where_equals": {}, "batch_size": 500}


def test_an_unknown_source_is_told_the_sources_open_to_the_application(settings):
    etl = App(id=APP_ID, name="etl", token_id=uuid.uuid4())
    assert errors_of(source="crm", app=etl) == {
        "params.source": ["Unknown source; the sources this application may use are: billing, legacy (JOBS_SOURCES)."]
    }
    settings.JOBS_SOURCES = {}
    assert errors_of(source="legacy", app=etl)["params.source"] == [
        "No source is open to this application: the operator names sources in JOBS_SOURCES and the applications "
        "that may use each in JOBS_SOURCE_APPS."
    ]


def test_a_url_is_not_a_source():
    assert "Unknown source" in errors_of(source="postgres://u:p@db/x")["params.source"][0]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"target_url": "http://elsewhere/"}, "params.target_url", "JOBS_MIGRATION_TARGET_HOSTS lists (crm.internal)"),
        ({"mapping": {}}, "params.mapping", "Map at least one target field to a source column."),
        ({"mapping": {"a": 5}}, "params.mapping.a", "Must be a string."),
        ({"mapping": {"a": "x" * 64}}, "params.mapping.a", "no more than 63 characters"),
        ({"mapping": {"": "id"}}, "params.mapping", "Each of the target fields needs 1 to 100 characters."),
        ({"mapping": {f"f{i}": "id" for i in range(201)}}, "params.mapping", "At most 200 target fields."),
        ({"transforms": {"email": "reverse"}}, "params.transforms.email", "Must be one of: lower, text, trim, upper."),
        ({"transforms": {"mail": "lower"}}, "params.transforms", "not mapped: mail"),
        ({"where_equals": {"region": 5}}, "params.where_equals.region", "Must be a string."),
        ({"where_equals": {f"c{i}": "x" for i in range(11)}}, "params.where_equals", "At most 10 columns."),
        ({"batch_size": 0}, "params.batch_size", "greater than or equal to 1"),
        ({"batch_size": 5001}, "params.batch_size", "less than or equal to 5000"),
        ({"table": ""}, "params.table", "This field may not be blank."),
        ({"key": "k" * 64}, "params.key", "no more than 63 characters"),
        ({"sql": "SELECT 1"}, "params.sql", "Unknown parameter; migrate_rows accepts: source, schema, table"),
    ],
)
def test_params_errors_name_the_field_and_say_what_to_do(overrides, field, message):
    errors = errors_of(**overrides)
    assert field in errors and message in " ".join(errors[field]), errors


def test_every_required_param_is_named_when_missing():
    with pytest.raises(InvalidInput) as info:
        registry.get("migrate_rows").validate_params({})
    assert set(info.value.errors) == {f"params.{name}" for name in ("source", "table", "key", "mapping", "target_url")}


def test_the_published_schema_describes_the_mapping_entries():
    schema = registry.get("migrate_rows").params_schema()
    props = schema["properties"]
    assert props["mapping"]["additionalProperties"] == {"type": "string", "maxLength": 63}
    assert props["transforms"]["additionalProperties"] == {"enum": ["lower", "text", "trim", "upper"], "type": "string"}
    assert props["where_equals"]["additionalProperties"] == {"type": "string", "maxLength": 200}
    assert props["batch_size"] == {
        "type": "integer",
        "maximum": 5000,
        "minimum": 1,
        "default": 500,
        "description": "Rows per batch (one POST each).",
    }
    assert schema["required"] == ["source", "table", "key", "mapping", "target_url"]
    assert schema["additionalProperties"] is False


# -- the settings -------------------------------------------------------------------------------
def test_sources_are_name_url_pairs_separated_by_whitespace():
    raw = "legacy=postgres://u:p@db1:5432,db2:5432/app?target_session_attrs=read-write\n  crm_2=postgresql://h/crm"
    assert named_sources(raw) == {
        "legacy": "postgres://u:p@db1:5432,db2:5432/app?target_session_attrs=read-write",
        "crm_2": "postgresql://h/crm",
    }
    assert named_sources("") == named_sources(None) == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("Legacy=postgres://u:secret@h/db", "entry 1 must be name=postgres://…"),
        ("a=postgres://h/a postgres://u:secret@h/db", "entry 2 must be name=postgres://…"),
        ("a=mysql://u:secret@h/db", "source 'a' needs a postgres:// or postgresql:// URL"),
        ("a=postgres://h/a a=postgres://u:secret@h/b", "source 'a' is named twice"),
    ],
)
def test_a_mistake_in_the_sources_is_refused_without_echoing_a_url(raw, message):
    with pytest.raises(ImproperlyConfigured) as info:
        named_sources(raw)
    assert message in str(info.value) and "secret" not in str(info.value)


def test_target_hosts_are_a_list_of_exact_names():
    assert host_list(" CRM.internal, ,api.example.com ") == ["crm.internal", "api.example.com"]
    assert host_list(None) == []


# -- the batch loop, against a scripted source and target -------------------------------------------
class FakeContext:
    def __init__(self, checkpoint_state: Any = None, app_id: uuid.UUID | None = APP_ID) -> None:
        self.job_id = uuid.UUID(int=7)
        self.app_id = app_id
        self.checkpoint_state = checkpoint_state
        self.lines: list[tuple[str, str, dict]] = []
        self.checkpoints: list[Any] = []
        self.slept: list[float] = []
        self.percent = 0.0

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        self.lines.append((level, message, fields))

    def checkpoint(self, state: Any) -> None:
        self.checkpoints.append(state)
        self.checkpoint_state = state

    def progress(self, percent: float, message: str = "") -> None:
        self.percent = percent

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def raise_if_cancelled(self) -> None:
        pass


class FakeSource:
    """Keys 1..n, read a page at a time as the real one does (``key > after``)."""

    def __init__(self, plan: mr.Plan, *, dsn: str, job_id: Any, n: int = 10) -> None:
        self.plan, self.keys, self.after_seen = plan, list(range(1, n + 1)), []

    def check(self) -> str:
        return "bigint"

    def remaining(self, *, after: Any) -> tuple[int, bool]:
        return len([k for k in self.keys if after is None or k > after]), True

    def page(self, *, after: Any) -> list[dict[str, Any]]:
        self.after_seen.append(after)
        left = [k for k in self.keys if after is None or k > after][: self.plan.batch_size]
        return [{"id": k, "email": f"U{k}@X", "full_name": f"u {k}"} for k in left]

    def close(self) -> None:
        pass


def run_with(answers: list[int | None], ctx: FakeContext, **overrides: Any) -> tuple[Any, list[dict]]:
    """Run the type with a fake source and a target answering ``answers`` in turn (then 200)."""
    sent: list[dict] = []
    script = iter(answers)

    def post(url: str, body: bytes, *, idempotency_key: str, job_id: Any) -> mr.Answer:
        status = next(script, 200)
        sent.append({"key": idempotency_key, "body": orjson.loads(body), "status": status})
        return mr.Answer(status, "" if status else "ConnectionRefusedError: refused", None, 3)

    params = registry.get("migrate_rows").validate_params({**PARAMS, "batch_size": 4, **overrides})
    with mock.patch.object(mr, "Source", FakeSource), mock.patch.object(mr, "post_batch", post):
        try:
            return mr.MigrateRows().run(ctx, params), sent
        except Exception as exc:
            return exc, sent


def test_every_batch_is_sent_acknowledged_checkpointed_and_logged():
    ctx = FakeContext()
    result, sent = run_with([], ctx)
    assert result == {
        "rows": 10,
        "batches": 3,
        "last_key": 10,
        "resumed_after": None,
        "rows_this_attempt": 10,
        "keyset": "legacy:public.customers(id)",
    }
    assert [[r["id"] for r in s["body"]["rows"]] for s in sent] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert [c["last_key"] for c in ctx.checkpoints] == [4, 8, 10] and ctx.percent == 100.0
    assert ctx.checkpoints[-1] == {
        "last_key": 10,
        "rows_done": 10,
        "batches_done": 3,
        "keyset": "legacy:public.customers(id)",
    }
    assert [m for _, m, _ in ctx.lines] == [
        "starting: 10 rows of legacy:public.customers(id) to crm.internal",
        "batch 1 sent",
        "batch 2 sent",
        "batch 3 sent",
        "finished: 10 rows in 3 batches",
    ]
    assert ctx.lines[2][2] == {"rows": 4, "first_key": 5, "last_key": 8, "status": 200, "ms": 3}


def test_a_failing_target_is_retried_within_the_attempt_with_the_same_key(settings):
    settings.JOBS = {**settings.JOBS, "MIGRATION_TARGET_RETRIES": 3, "MIGRATION_TARGET_BACKOFF": 0.5}
    ctx = FakeContext()
    result, sent = run_with([200, 503, None, 502, 200], ctx)
    assert result["rows"] == 10 and ctx.slept == [0.5, 1.0, 2.0]
    assert len({s["key"] for s in sent[1:5]}) == 1 and [s["body"] for s in sent[1:5]].count(sent[1]["body"]) == 4
    warnings = [(m, f["retry"]) for level, m, f in ctx.lines if level == "warning"]
    assert warnings == [
        ("batch 2: HTTP 503; retry 1 of 3 in 0.5 s", 1),
        ("batch 2: ConnectionRefusedError: refused; retry 2 of 3 in 1 s", 2),
        ("batch 2: HTTP 502; retry 3 of 3 in 2 s", 3),
    ]


def test_a_target_down_longer_than_the_retries_fails_the_attempt_retryably_after_its_last_batch(settings):
    settings.JOBS = {**settings.JOBS, "MIGRATION_TARGET_RETRIES": 2, "MIGRATION_TARGET_BACKOFF": 0.1}
    ctx = FakeContext()
    error, sent = run_with([200, 503, 503, 503], ctx)
    assert isinstance(error, mr.TargetUnavailable) and not isinstance(error, PermanentError)
    assert str(error) == (
        "the target did not acknowledge batch 2 after 3 tries (HTTP 503); a next attempt, if any is left, continues "
        'after key 4; once none is, POST /jobs/{id}/rerun with {"resume": true} does'
    )
    assert ctx.checkpoint_state["last_key"] == 4 and len(sent) == 4
    assert ctx.lines[-1][0] == "error" and "giving up on this attempt after 3 tries" in ctx.lines[-1][1]
    # The next attempt resumes after key 4, sending batch 2 with the same key as before.
    again = FakeContext(checkpoint_state=ctx.checkpoint_state)
    result, resent = run_with([], again)
    assert result["resumed_after"] == 4 and result["rows_this_attempt"] == 6 and result["rows"] == 10
    assert resent[0]["key"] == sent[1]["key"] and resent[0]["body"] == sent[1]["body"]
    assert again.lines[0] == (
        "warning",
        "resuming after key 4 (4 rows in 1 batches already sent)",
        {"last_key": 4, "rows_done": 4, "batches_done": 1, "rows_left": 6},
    )


@pytest.mark.parametrize("status", [400, 404, 409, 422, 301])
def test_a_refusal_is_permanent_and_names_the_receivers_status(status):
    ctx = FakeContext()
    error, sent = run_with([200, status], ctx)
    assert isinstance(error, PermanentError) and f"refused batch 2 with HTTP {status}" in str(error)
    assert len(sent) == 2 and [c["last_key"] for c in ctx.checkpoints] == [4]


def test_a_target_host_removed_since_the_create_fails_the_job_at_run_time(settings):
    params = registry.get("migrate_rows").validate_params(PARAMS)
    settings.JOBS_MIGRATION_TARGET_HOSTS = ["other.internal"]
    with pytest.raises(PermanentError, match="target_url: Migration targets may only go to the hosts"):
        mr.MigrateRows().run(FakeContext(), params)
    settings.JOBS_MIGRATION_TARGET_HOSTS = ["crm.internal"]
    settings.JOBS_SOURCES = {}
    with pytest.raises(PermanentError, match="source 'legacy': No source is open to this application"):
        mr.MigrateRows().run(FakeContext(), params)


def test_a_source_is_read_only_for_the_applications_it_names_when_the_job_runs(settings, applications):
    """Checked again when the job runs, for the job's own application: the operator may have
    closed the source since the create (and the worker's re-check of the params knows no
    application)."""
    params = registry.get("migrate_rows").validate_params(PARAMS)
    with mock.patch.object(mr, "Source") as source:
        settings.JOBS_SOURCE_APPS = {"legacy": ("reports",), "billing": ("etl",)}
        with pytest.raises(PermanentError) as info:
            mr.MigrateRows().run(FakeContext(), params)
        assert str(info.value) == (
            "source 'legacy': Unknown source; the sources this application may use are: billing (JOBS_SOURCES)."
        )
        applications[APP_ID] = "reports"
        settings.JOBS_MIGRATION_TARGET_HOSTS = []  # stops the run right after the source's check
        with pytest.raises(PermanentError, match="target_url"):
            mr.MigrateRows().run(FakeContext(), params)
        for ctx in (FakeContext(app_id=None), FakeContext(app_id=uuid.UUID(int=1))):  # none, or a vanished one
            with pytest.raises(PermanentError, match="the job's application is unknown"):
                mr.MigrateRows().run(ctx, params)
    source.assert_not_called()  # no connection was ever made


def test_the_demo_receiver_can_be_a_slow_api():
    """``demo_receiver --delay S``: each batch takes S seconds, so the README's migration can
    be watched (and crashed) while it runs."""
    import json as json_module
    import time
    import urllib.request

    from jobs.management.commands.demo_receiver import Receiver

    with Receiver(delay=0.3) as receiver:
        body = json_module.dumps({"rows": [{"id": 1}], "batch": {}}).encode()
        request = urllib.request.Request(
            receiver.url + "/x", data=body, method="POST", headers={"Idempotency-Key": "k1"}
        )
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200
        assert time.monotonic() - started >= 0.3
        assert receiver.summary()["rows"] == 1
