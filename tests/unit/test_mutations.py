"""The mutation catalog stays in step with the code: every search text still matches
exactly once (so ``scripts/mutate`` never runs on a rotted list), and the runner refuses
one that does not. The mutations themselves run in ``scripts/mutate`` (CI)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.mutations import runner
from tests.mutations.catalog import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parents[2]


def test_every_mutation_still_applies_to_the_code():
    assert runner.problems(MUTATIONS, ROOT) == []


def test_every_named_test_exists():
    """A node id pytest cannot find would make its mutation an error, not a kill."""
    for mutation in MUTATIONS:
        for test in mutation.tests:
            path, _, name = test.partition("::")
            function = name.split("[", 1)[0]
            assert f"def {function}(" in (ROOT / path).read_text(), f"{mutation.name}: {test}"


def test_the_issues_mutations_are_all_in_the_catalog():
    names = {m.name for m in MUTATIONS}
    required = {
        "fence_heartbeat",
        "cancelled_finish_unfenced",
        "heartbeat_keeps_the_lease",
        "list_type_filter_ignored",
        "run_at_ignored_at_create",
        "is_retryable_ignored",
        "sleep_not_woken_by_cancel",
        "job_delete_trigger_dropped",
        "event_truncate_trigger_dropped",
        "isolation_job_get",
        "isolation_job_list",
        "isolation_job_cancel",
        "idempotency_index_not_unique",
        "rescue_does_nothing",
        "rescue_without_envelope",
        "callback_outbox_not_written",
        "running_cap_ignored",
        "scope_never_checked",
    }
    assert required <= names, required - names


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "x.sql").write_text("WHERE attempts = %(attempt)s;\nWHERE twice;\nWHERE twice;\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_x(): pass\n")
    return tmp_path


def mutation(**changes) -> Mutation:
    base = Mutation(
        name="m",
        rule="r",
        path="jobs/x.sql",
        search="attempts = %(attempt)s",
        replace="attempts >= %(attempt)s",
        tests=("tests/test_x.py::test_x",),
    )
    return dataclasses.replace(base, **changes)


def test_a_mutation_that_applies_is_applied_to_the_copy(tree):
    assert runner.problems([mutation()], tree) == []
    runner.apply(mutation(), tree)
    assert (tree / "jobs" / "x.sql").read_text().startswith("WHERE attempts >= %(attempt)s;")


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"search": "attempts = %(n)s"}, "m: search text not found in jobs/x.sql"),
        ({"search": "WHERE twice"}, "m: search text found 2 times in jobs/x.sql"),
        ({"path": "jobs/moved.sql"}, "m: jobs/moved.sql does not exist"),
        ({"replace": "attempts = %(attempt)s"}, "m: the replacement changes nothing"),
        ({"tests": ()}, "m: names no test"),
        ({"tests": ("tests/test_gone.py::test_x",)}, "m: no test file for tests/test_gone.py::test_x"),
    ],
)
def test_a_mutation_that_no_longer_applies_is_named_loudly(tree, changes, problem):
    [found] = runner.problems([mutation(**changes)], tree)
    assert found.startswith(problem)


def test_apply_refuses_a_search_text_that_is_not_there_exactly_once(tree):
    for search in ("attempts = %(n)s", "WHERE twice"):
        with pytest.raises(runner.CatalogRotted, match=r"search text not found exactly once in jobs/x\.sql"):
            runner.apply(mutation(search=search), tree)


def test_two_mutations_may_not_share_a_name(tree):
    assert runner.problems([mutation(), mutation()], tree) == ["m: the name is used twice"]


def test_the_scratch_copy_is_outside_the_source_tree_and_holds_the_files(tree):
    copy = runner.scratch_copy(["jobs/x.sql", "tests/test_x.py"], tree)
    try:
        assert not copy.is_relative_to(tree) and not copy.is_relative_to(ROOT)
        assert (copy / "jobs" / "x.sql").read_text() == (tree / "jobs" / "x.sql").read_text()
    finally:
        import shutil

        shutil.rmtree(copy)


def test_a_failing_test_is_a_kill_a_passing_one_survival_anything_else_an_error():
    assert runner.verdict(1) == "killed"
    assert runner.verdict(0) == "SURVIVED"
    for code in (2, 3, 4, 5):  # interrupted (collection error), internal, usage (no such test), none collected
        assert runner.verdict(code) == "ERROR"
    assert runner.verdict(None) == "TIMEOUT"
