"""The benchmark's own arithmetic and report code (fast; the real check is
``scripts/bench --smoke`` in .ci/run, which runs every scenario end to end)."""

from __future__ import annotations

import pytest

from benchmarks import run


def test_percentile__nearest_rank():
    values = [float(v) for v in range(100, 0, -1)]  # 100 … 1, unsorted on purpose
    assert run.percentile(values, 50) == 50.0
    assert run.percentile(values, 99) == 99.0
    assert run.percentile(values, 100) == 100.0
    assert run.percentile([7.0], 99) == 7.0


def test_check__targets_both_ways():
    assert run.check(0.9, ">=", 0.85) is True
    assert run.check(0.8, ">=", 0.85) is False
    assert run.check(1.31, "<=", 1.3) is False
    assert run.check(None, "<=", 1.3) is None


def test_report_rows_are_kept_in_scenario_order():
    report = run.Report()
    for scenario in ("7 memory", "1 create", "5 growth", "3 execute", "1 create"):
        report.add(run.Row(scenario, scenario, 1.0, 1.0))
    assert [r.scenario for r in report.rows] == ["1 create", "1 create", "3 execute", "5 growth", "7 memory"]


def test_table_shows_met_and_not_met():
    rows = [
        run.Row("1 create", "POST /jobs throughput", 980.0, 1450.0, 980 / 1450, ">= 0.85", False, "req/s"),
        run.Row("7 memory", "peak RSS", 58.1, 46.5, 1.25, "<= 120 MB", True, "MB"),
        run.Row("4 pickup", "p50", 56.0, None, None, "<= 10 ms", None, "ms"),
    ]
    lines = run.render_table(rows).splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["scenario", "figure", "platform", "baseline", "ratio", "target", "met"]
    assert cells[2][2:] == ["980", "1,450", "0.68", ">= 0.85", "NOT MET"]
    assert cells[3][2:] == ["58.1", "46.5", "1.25", "<= 120 MB", "met"]
    assert cells[4][2:] == ["56.0", "-", "-", "<= 10 ms", "-"]  # no baseline, no ratio, nothing to meet


def test_collapsed_stacks_summary__self_and_inclusive_shares(tmp_path):
    profile = tmp_path / "create.txt"
    profile.write_text(
        "handle (gunicorn/workers/sync.py:10);view (/x/site-packages/rest_framework/views.py:5);"
        "execute (jobs/db.py:3) 30\n"
        "handle (gunicorn/workers/sync.py:10);view (/x/site-packages/rest_framework/views.py:6);"
        "render (/x/site-packages/rest_framework/renderers.py:9) 10\n"
    )
    summary = run.summarize_collapsed(profile)
    assert summary["samples"] == 40
    assert summary["self"] == [("execute (jobs/db.py)", 75.0), ("render (rest_framework/renderers.py)", 25.0)]
    inclusive = dict(summary["inclusive"])
    assert inclusive == {"execute (jobs/db.py)": 75.0, "render (rest_framework/renderers.py)": 25.0}
    # handle and view are on every stack (the trunk, both lines of view as one function): left out.


def test_collapsed_stacks_summary__focus_keeps_only_stacks_through_a_function(tmp_path):
    profile = tmp_path / "execute.txt"
    profile.write_text(
        'process 1:"qcluster";worker (/x/site-packages/django_q/worker.py:40);execute_job (jobs/worker.py:80) 9\n'
        'process 2:"qcluster";pusher (/x/site-packages/django_q/pusher.py:12) 91\n'
    )
    summary = run.summarize_collapsed(profile, focus="worker (django_q/worker.py)")
    assert summary["samples"] == 9
    assert summary["self"] == [("execute_job (jobs/worker.py)", 100.0)]


def test_smoke_options_are_small_and_full_ones_match_the_issue():
    smoke = run.parse_options(["--smoke"])
    assert (smoke.growth_large, smoke.jobs, smoke.seconds) == (5_000, 200, 2.0)
    full = run.parse_options([])
    assert (full.growth_small, full.growth_large, full.connections, full.web_workers) == (10_000, 1_000_000, 16, 4)
    assert full.pickup_samples >= 50
    assert (full.fibonacci_n, full.pi_digits) == (1_000_000, 100_000)


def test_unknown_scenario_is_refused():
    with pytest.raises(SystemExit):
        run.parse_options(["--only", "create,bogus"])


def test_wrk_script_carries_the_token_and_the_json_body():
    body = run.WRK_POST % '{"type": "fibonacci"}'
    script = run.WRK_LUA % {"token": "jp_secret", "request": body}
    assert 'wrk.headers["Authorization"] = "Token jp_secret"' in script
    assert 'wrk.body = \'{"type": "fibonacci"}\'' in script
    assert "%%" not in script and "BENCH {" in script
