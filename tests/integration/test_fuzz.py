"""Whatever a client sends, the API answers with a 2xx or a 4xx problem, never a 500."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Text that favours characters known to upset databases and parsers (NUL, quotes, escapes).
hostile_text = st.text(st.sampled_from("\x00'\"\\%;{}[]") | st.characters(codec="utf-8"), max_size=30)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=12,
)
job_types = st.sampled_from(["fibonacci", "pi", "countdown", "nope", ""]) | st.text(max_size=20) | json_scalars
bodies = (
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

FUZZ = settings(
    max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(body=bodies)
def test_post_jobs_never_500(api, body):
    response = api.post("/jobs", data=json.dumps(body), content_type="application/json")
    assert response.status_code in (201, 400), (response.status_code, response.content)
    if response.status_code == 400:
        assert response["Content-Type"] == "application/problem+json"
        problem = response.json()
        # Invalid input names its fields; malformed JSON (json.dumps(inf) is "Infinity") explains itself.
        assert problem.get("errors") or problem["detail"].startswith("JSON parse error")


@FUZZ
@given(
    raw=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "text/plain", "", "application/x"])
)
def test_post_jobs_with_arbitrary_bytes_never_500(api, raw, content_type):
    response = api.generic("POST", "/jobs", raw, content_type=content_type)
    assert response.status_code in (201, 400, 415), (response.status_code, response.content)


@FUZZ
@given(path=st.text(alphabet=st.characters(codec="ascii", exclude_characters="/?#%"), max_size=60))
def test_get_any_job_id_never_500(api, path):
    response = api.get(f"/jobs/{path}")
    assert response.status_code in (200, 301, 404), (response.status_code, response.content)


query_keys = st.sampled_from(["status", "type", "limit", "cursor", "metadata.migration"]) | hostile_text


@FUZZ
@given(query=st.dictionaries(query_keys, hostile_text, max_size=4))
def test_list_with_any_query_never_500(api, query):
    response = api.get("/jobs", query)
    assert response.status_code in (200, 400), (response.status_code, response.content)
