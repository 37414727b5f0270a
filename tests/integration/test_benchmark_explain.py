"""The growth scenario's EXPLAIN: it plans the statement the service or selector sends,
with the parameters they build (no copy of their parameter lists to fall behind), and
leaves nothing behind."""

from __future__ import annotations

import pytest

from benchmarks.scenarios import growth
from jobs import selectors, services
from jobs.registry import registry


@pytest.fixture
def bench_noop():
    """The benchmark's job type, registered for this test only."""
    from benchmarks.jobtypes import BenchNoop

    registry.register(BenchNoop)
    yield
    registry._types.pop("bench_noop", None)


def test_every_growth_operation_is_explained_as_it_runs(app, raw, bench_noop):
    job, _ = services.job_create(app=app, type="bench_noop", params={}, metadata={"migration": "m7"})
    plans = {op: growth.explain(call, query) for op, (query, call) in growth.operations(app, job.id).items()}
    assert set(plans) == {"create", "read by id", "list first page", "list metadata-filtered page"}
    assert "Insert on jobs_job" in plans["create"]
    assert "actual time" in plans["read by id"] and "Buffers" in plans["read by id"]
    assert "metadata @>" not in plans["list first page"]
    # The selector's own jsonb parameter, as the API's list sends it.
    assert """'{"migration": "m7"}'::jsonb""" in plans["list metadata-filtered page"]
    raw.execute("SELECT count(*) FROM jobs_job WHERE app_id = %s", [app.id])
    assert raw.fetchone()[0] == 1  # the explained creates were rolled back


def test_explain_of_a_statement_the_call_does_not_send_is_an_error(app):
    job, _ = services.job_create(app=app, type="fibonacci", params={"n": 1})
    with pytest.raises(RuntimeError, match="no job_list statement"):
        growth.explain(lambda: selectors.job_get(app=app, job_id=job.id), "job_list")
