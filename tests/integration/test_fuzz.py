"""Whatever a client sends, the API answers with a 2xx or a 4xx problem, never a 500.

The strategies are biased towards requests that are valid in shape with hostile values
inside (NUL, quotes, escapes, deep nesting, huge numbers), so most examples travel the
whole way to the database instead of stopping at the first check. Each test counts which
path its examples reached (printed in the run's summary as "fuzz reach") and fails if the
deep paths are starved.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs import services
from tests.conftest import FUZZ_REACH
from tests.integration.conftest import new_app

# Text that favours characters known to upset databases and parsers (NUL, quotes, escapes).
hostile_text = st.text(st.sampled_from("\x00'\"\\%;{}[]") | st.characters(codec="utf-8"), max_size=30)
# The same without NUL (which jsonb refuses), so such values are stored, not refused.
storable_text = st.text(
    st.sampled_from("'\"\\%;{}[]$\u2028\ufeff\U0001f600") | st.characters(codec="utf-8", exclude_characters="\x00"),
    max_size=30,
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=12,
)
storable_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False)
) | storable_text
storable_values = st.recursive(
    storable_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(storable_text, inner, max_size=4),
    max_leaves=12,
)

# Valid requests of every type, with hostile metadata: these reach the INSERT.
valid_params = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("fibonacci"), "params": st.fixed_dictionaries({"n": st.integers(0, 10**6)})}
    ),
    st.fixed_dictionaries({"type": st.just("pi"), "params": st.fixed_dictionaries({"digits": st.integers(1, 10**5)})}),
    st.fixed_dictionaries(
        {"type": st.just("countdown"), "params": st.fixed_dictionaries({"seconds": st.integers(1, 3600)})}
    ),
)
valid_bodies = st.builds(
    lambda base, metadata, extra: {**base, "metadata": metadata, **extra},
    valid_params,
    st.dictionaries(storable_text, storable_values, max_size=5),
    st.fixed_dictionaries(
        {},
        optional={
            "max_attempts": st.integers(1, 25),
            "timeout": st.integers(1, 7200),
            "run_at": st.sampled_from(["2020-01-01T00:00:00Z", "2099-12-31T23:59:59+05:00"]),
        },
    ),
)
# Valid in shape, hostile inside: bad param values, NUL in metadata, wrong types.
near_valid_bodies = st.builds(
    lambda base, params, metadata: {**base, "params": {**base["params"], **params}, "metadata": metadata},
    valid_params,
    st.dictionaries(st.sampled_from(["n", "digits", "seconds", "x"]), json_values, max_size=2),
    st.dictionaries(hostile_text, json_values, max_size=4) | json_values,
)
job_types = st.sampled_from(["fibonacci", "pi", "countdown", "nope", ""]) | st.text(max_size=20) | json_scalars
anything = (
    st.fixed_dictionaries(
        {},
        optional={
            "type": job_types,
            "params": st.dictionaries(st.sampled_from(["n", "digits", "seconds", "x"]), json_values, max_size=3)
            | json_values,
            "metadata": json_values,
            "max_attempts": json_values,
            "timeout": json_values,
            "run_at": st.text(max_size=30) | json_values,
        },
    )
    | json_values
)
# Three fifths valid, a fifth nearly valid, a fifth anything at all.
bodies = st.integers(0, 4).flatmap(lambda i: valid_bodies if i < 3 else near_valid_bodies if i == 3 else anything)

EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def as_json_numbers(value):
    """JSON numbers are decimals: 7.205759403792163e+16 and 72057594037921630 are the same
    number (jsonb keeps it as the latter), though Python's float and int differ."""
    return json.loads(json.dumps(value), parse_float=Decimal, parse_int=Decimal)


def reach(test: str) -> Counter:
    return FUZZ_REACH.setdefault(test, Counter())


def create_path(response) -> str:
    if response.status_code == 201:
        return "created (stored)"
    fields = [error["field"] for error in response.json().get("errors") or []]
    if any(f.startswith("params") for f in fields):
        return "400 at the params checks"
    if any(f.startswith("metadata") for f in fields):
        return "400 at the metadata checks"
    return "400 before the params (shape, type, limits, JSON)"


def test_post_jobs_never_500(api):
    reached = reach("POST /jobs bodies")

    @FUZZ
    @given(body=bodies)
    def check(body):
        response = api.post("/jobs", data=json.dumps(body), content_type="application/json")
        assert response.status_code in (201, 400), (response.status_code, response.content)
        if response.status_code == 400:
            assert response["Content-Type"] == "application/problem+json"
            problem = response.json()
            # Invalid input names its fields; malformed JSON (json.dumps(inf) is "Infinity") explains itself.
            assert problem.get("errors") or problem["detail"].startswith("JSON parse error")
        else:
            stored = api.get(response["Location"]).json()
            sent = body["metadata"] if body["metadata"] is not None else {}  # null metadata means none
            assert as_json_numbers(stored["metadata"]) == as_json_numbers(sent)
            assert as_json_numbers(stored["params"]) == as_json_numbers(body["params"])
        reached[create_path(response)] += 1

    check()
    assert sum(reached.values()) >= EXAMPLES
    assert reached["created (stored)"] >= EXAMPLES * 0.4, reached
    assert reached["400 at the params checks"] + reached["400 at the metadata checks"] >= EXAMPLES * 0.1, reached


@FUZZ
@given(
    raw=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "text/plain", "", "application/x"])
)
def test_post_jobs_with_arbitrary_bytes_never_500(api, raw, content_type):
    response = api.generic("POST", "/jobs", raw, content_type=content_type)
    assert response.status_code in (201, 400, 415), (response.status_code, response.content)


def test_get_any_job_id_never_500(api, app):
    """Real ids of this application (200), real ids of another one (404, the same answer
    as an unknown id), random UUIDs and arbitrary text."""
    own = [str(services.job_create(app=app, type="fibonacci", params={"n": 1}, metadata={})[0].id) for _ in range(40)]
    other_app, _ = new_app()
    theirs = [
        str(services.job_create(app=other_app, type="fibonacci", params={"n": 1}, metadata={})[0].id) for _ in range(40)
    ]

    def without_instance(response) -> dict:
        return {k: v for k, v in response.json().items() if k != "instance"}

    unknown_body = without_instance(api.get(f"/jobs/{uuid.uuid4()}"))
    reached = reach("GET /jobs/{id}")
    kinds = [
        st.sampled_from(own).map(lambda i: ("own", i)),
        st.sampled_from(theirs).map(lambda i: ("another app's", i)),
        st.uuids().map(lambda i: ("unknown uuid", str(i))),
        st.text(alphabet=st.characters(codec="ascii", exclude_characters="/?#%"), max_size=60).map(
            lambda i: ("text", i)
        ),
    ]
    ids = st.integers(0, 3).flatmap(lambda i: kinds[i])

    @FUZZ
    @given(kind_and_id=ids)
    def check(kind_and_id):
        kind, job_id = kind_and_id
        response = api.get(f"/jobs/{job_id}")
        assert response.status_code in (200, 301, 404), (response.status_code, response.content)
        if kind == "own":
            assert response.status_code == 200 and response.json()["id"] == job_id
        elif kind in ("another app's", "unknown uuid"):
            assert response.status_code == 404 and without_instance(response) == unknown_body
        reached[f"{kind}: {response.status_code}"] += 1

    check()
    assert reached["own: 200"] >= EXAMPLES * 0.15, reached
    assert reached["another app's: 404"] >= EXAMPLES * 0.15, reached


def test_list_with_any_query_never_500(api, app):
    services.job_create(app=app, type="fibonacci", params={"n": 1}, metadata={"migration": "x"})[0]
    reached = reach("GET /jobs?query")
    known = st.fixed_dictionaries(
        {},
        optional={
            "status": st.sampled_from(["queued", "running", "succeeded"]) | hostile_text,
            "type": st.sampled_from(["fibonacci", "pi"]) | storable_text,
            "limit": st.integers(1, 500).map(str) | hostile_text,
            "metadata.migration": st.just("x") | storable_text,
        },
    )
    anything_goes = st.dictionaries(
        st.sampled_from(["status", "type", "limit", "cursor", "metadata.migration"]) | hostile_text,
        hostile_text,
        max_size=4,
    )

    @FUZZ
    @given(query=st.integers(0, 2).flatmap(lambda i: known if i < 2 else anything_goes))
    def check(query):
        response = api.get("/jobs", query)
        assert response.status_code in (200, 400), (response.status_code, response.content)
        reached[str(response.status_code)] += 1

    check()
    assert reached["200"] >= EXAMPLES * 0.3, reached
