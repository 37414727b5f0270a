"""The benchmark's own code that runs without a database: options, arithmetic, report,
process groups, wrk's script and its parsing, profile summaries. The real check is
``scripts/bench --smoke`` in .ci/run, which runs every scenario end to end; the EXPLAIN
of the growth scenario is tested against PostgreSQL in
tests/integration/test_benchmark_explain.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import psutil
import pytest

from benchmarks import cli, database, load, processes, profile, report
from benchmarks.scenarios import memory, side_by_side


# -- options ---------------------------------------------------------------------------------
def test_smoke_options_are_small_and_full_ones_match_the_issue():
    smoke = cli.parse_options(["--smoke"])
    assert (smoke.growth_large, smoke.jobs, smoke.seconds) == (5_000, 200, 2.0)
    full = cli.parse_options([])
    assert (full.growth_small, full.growth_large, full.connections, full.web_workers) == (10_000, 1_000_000, 16, 4)
    assert full.pickup_samples >= 50
    assert (full.fibonacci_n, full.pi_digits) == (1_000_000, 100_000)


def test_unknown_scenario_is_refused():
    with pytest.raises(SystemExit):
        cli.parse_options(["--only", "create,bogus"])


def test_the_command_keeps_its_flags():
    flags = {flag for action in cli.parser()._actions for flag in action.option_strings}
    assert flags == {
        "-h",
        "--help",
        "--smoke",
        "--out",
        "--seconds",
        "--rounds",
        "--connections",
        "--web-workers",
        "--jobs",
        "--pickup-samples",
        "--growth",
        "--only",
        "--py-spy",
        "--keep-logs",
    }


def test_growth_sizes_and_a_subset_of_scenarios(tmp_path):
    out = str(tmp_path / "r.json")
    options = cli.parse_options(["--growth", "2_000,30_000", "--only", "growth, read", "--out", out])
    assert (options.growth_small, options.growth_large) == (2_000, 30_000)
    assert options.only == ("growth", "read")
    assert options.out == tmp_path / "r.json"


# -- arithmetic and the table ----------------------------------------------------------------
def test_percentile__nearest_rank():
    values = [float(v) for v in range(100, 0, -1)]  # 100 … 1, unsorted on purpose
    assert report.percentile(values, 50) == 50.0
    assert report.percentile(values, 99) == 99.0
    assert report.percentile(values, 100) == 100.0
    assert report.percentile([7.0], 99) == 7.0


def test_check__targets_both_ways():
    assert report.check(0.9, ">=", 0.85) is True
    assert report.check(0.8, ">=", 0.85) is False
    assert report.check(1.31, "<=", 1.3) is False
    assert report.check(None, "<=", 1.3) is None


def test_report_rows_are_kept_in_scenario_order():
    rows = report.Report()
    for scenario in ("7 memory", "1 create", "5 growth", "3 execute", "1 create"):
        rows.add(report.Row(scenario, scenario, 1.0, 1.0))
    assert [r.scenario for r in rows.rows] == ["1 create", "1 create", "3 execute", "5 growth", "7 memory"]


def test_table_shows_met_and_not_met():
    rows = [
        report.Row("1 create", "POST /jobs throughput", 980.0, 1450.0, 980 / 1450, ">= 0.85", False, "req/s"),
        report.Row("7 memory", "peak RSS", 58.1, 46.5, 1.25, "<= 120 MB", True, "MB"),
        report.Row("4 pickup", "p50", 56.0, None, None, "<= 10 ms", None, "ms"),
    ]
    lines = report.render_table(rows).splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["scenario", "figure", "platform", "baseline", "ratio", "target", "met"]
    assert cells[2][2:] == ["980", "1,450", "0.68", ">= 0.85", "NOT MET"]
    assert cells[3][2:] == ["58.1", "46.5", "1.25", "<= 120 MB", "met"]
    assert cells[4][2:] == ["56.0", "-", "-", "<= 10 ms", "-"]  # no baseline, no ratio, nothing to meet


def _wrk_results(platform_rps: float, baseline_rps: float, platform_errors: int = 0) -> dict[str, dict]:
    def side(rps: float, non2xx: int) -> dict:
        return {"rps": rps, "p50_ms": 10.0, "p99_ms": 40.0, "non2xx": non2xx, "socket_errors": 0, "requests": 1000}

    return {"platform": side(platform_rps, platform_errors), "baseline": side(baseline_rps, 0)}


def test_side_by_side_rows__throughput_target_latencies_and_errors():
    rows = report.Report()
    side_by_side.add_rows(rows, "2 read", "GET /jobs/{id}", _wrk_results(900.0, 1000.0), 0.90)
    side_by_side.add_rows(rows, "1 create", "POST /jobs", _wrk_results(800.0, 1000.0, platform_errors=3), 0.85)
    figures = [(r.scenario, r.figure, r.target, r.met) for r in rows.rows]
    assert figures == [
        ("1 create", "POST /jobs throughput", ">= 0.85", False),
        ("1 create", "POST /jobs p50", "", None),
        ("1 create", "POST /jobs p99", "", None),
        ("1 create", "POST /jobs non-2xx + socket errors", "0", False),
        ("2 read", "GET /jobs/{id} throughput", ">= 0.90", True),
        ("2 read", "GET /jobs/{id} p50", "", None),
        ("2 read", "GET /jobs/{id} p99", "", None),
        ("2 read", "GET /jobs/{id} non-2xx + socket errors", "0", True),
    ]
    assert rows.rows[0].ratio == pytest.approx(0.8)
    assert (rows.rows[3].platform, rows.rows[3].baseline) == (3, 0)
    # A side that answered errors measured nothing: recorded, so the command exits non-zero.
    assert len(rows.unmeasured) == 1 and rows.unmeasured[0].startswith("1 create: the platform side answered 3 of ")


def test_a_side_that_answered_errors_makes_the_command_fail_after_its_report(tmp_path, monkeypatch, capsys):
    """The baseline's create once answered every request with a 500 while the report showed
    its rate as a throughput (and CI's smoke run passed); now the run says so and exits
    non-zero."""

    class Broken:
        def __init__(self, options):
            self.report = report.Report()

        def run(self):
            side_by_side.add_rows(self.report, "1 create", "POST /jobs", _wrk_results(500.0, 1000.0), 0.85)
            self.report.count_errors("1 create", {"baseline": {"requests": 10, "non2xx": 10, "socket_errors": 0}})

        def teardown(self):
            pass

    monkeypatch.setattr(cli, "Bench", Broken)
    monkeypatch.setattr(cli.shutil, "which", lambda name: "/usr/bin/" + name)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--smoke", "--out", str(tmp_path / "r.json"), "--only", "create"])
    assert "could not measure" in str(stopped.value.code) and "baseline side answered 10 of 10" in str(
        stopped.value.code
    )
    assert "POST /jobs throughput" in capsys.readouterr().out  # the report came first
    assert json.loads((tmp_path / "r.json").read_text())["unmeasured"]


def test_memory_rows_only_for_what_was_watched():
    sampler = SimpleNamespace(
        peak_mb={"platform gunicorn worker": 61.04, "baseline gunicorn worker": 48.0}, sample=lambda: None
    )
    bench = SimpleNamespace(memory=sampler, report=report.Report())
    memory.run(bench)
    [row] = bench.report.rows
    assert (row.figure, row.platform, row.baseline, row.met) == ("peak RSS of a gunicorn worker", 61.04, 48.0, True)
    assert bench.report.details["peak_rss_mb"] == {"platform gunicorn worker": 61.0, "baseline gunicorn worker": 48.0}


def test_json_report_and_printed_table(tmp_path, capsys):
    options = cli.parse_options(["--smoke", "--out", str(tmp_path / "out" / "bench.json")])
    rows = report.Report(details={"explain": {"5000": {"create": "Insert on jobs_job"}}, "elapsed_seconds": 3.5})
    rows.add(report.Row("4 pickup", "201 -> started_at p50", 2.5, None, None, "<= 10 ms", True, "ms"))
    report.print_report(options, rows)
    report.write_json(options, rows)
    printed = capsys.readouterr().out
    assert "EXPLAIN ANALYZE, create, 5,000 rows in the table:\nInsert on jobs_job" in printed
    assert "jobplatform benchmark (smoke)" in printed and "| 4 pickup" in printed
    data = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert set(data) == {"date", "machine", "mode", "options", "rows", "details", "unmeasured"}
    assert data["mode"] == "smoke" and data["options"]["out"] == str(options.out)
    assert data["rows"] == [
        {
            "scenario": "4 pickup",
            "figure": "201 -> started_at p50",
            "platform": 2.5,
            "baseline": None,
            "ratio": None,
            "target": "<= 10 ms",
            "met": True,
            "unit": "ms",
        }
    ]


# -- load --------------------------------------------------------------------------------------
def test_wrk_script_carries_the_token_and_the_json_body():
    script = load.wrk_script("jp_secret", {"type": "fibonacci"})
    assert 'wrk.headers["Authorization"] = "Token jp_secret"' in script
    assert 'wrk.body = \'{"type": "fibonacci"}\'' in script
    assert "%%" not in script and "BENCH {" in script
    assert "wrk.method" not in load.wrk_script("jp_secret", None)  # a GET


def test_wrk_output_and_rounds():
    out = 'Running 2s test\nBENCH {"requests": 500, "duration_us": 2000000, "p50_us": 4000, "p99_us": 9000, '
    out += '"non2xx": 1, "socket_errors": 2}\n'
    run = load.parse_wrk(out)
    assert (run["rps"], run["p50_ms"], run["p99_ms"]) == (250.0, 4.0, 9.0)
    slower = {**run, "requests": 100, "duration_us": 2_000_000, "p50_ms": 8.0, "p99_ms": 30.0, "non2xx": 0}
    both = load.combine_rounds([run, slower, run])
    assert both["requests"] == 1100 and both["rps"] == pytest.approx(1100 / 6)
    assert (both["p50_ms"], both["p99_ms"]) == (4.0, 30.0)  # the median round's p50, the worst p99
    assert (both["non2xx"], both["socket_errors"]) == (2, 6)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_wrk_counts_answers_that_are_not_2xx():
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            assert self.headers["Authorization"] == "Token jp_t"
            self.send_response(200 if self.path == "/ok" else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        good = load.wrk(f"{base}/ok", "jp_t", None, 1, 2)
        bad = load.wrk(f"{base}/busy", "jp_t", None, 1, 2)
    finally:
        server.shutdown()
    assert good["requests"] > 0 and good["non2xx"] == 0
    assert bad["requests"] > 0 and bad["non2xx"] == bad["requests"]


# -- processes and databases ---------------------------------------------------------------
def test_database_url_names_another_database_on_the_same_server():
    url = "postgres://bench:pw@127.0.0.1:5433/jp_main?sslmode=disable"
    assert database.with_database(url, "jobplatform_bench_1") == (
        "postgres://bench:pw@127.0.0.1:5433/jobplatform_bench_1?sslmode=disable"
    )
    socket_dir = "postgres://postgres@%2Ftmp%2Fpg/x"
    assert database.with_database(socket_dir, "postgres") == "postgres://postgres@%2Ftmp%2Fpg/postgres"


def test_free_port_can_be_bound():
    port = processes.free_port()
    assert 1024 <= port <= 65535


def _gone(proc: psutil.Process, timeout: float = 10) -> bool:
    """Dead (a zombie counts: its parent is gone and init has yet to reap it); a signal
    takes effect once the process is next scheduled, so give it a moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_stopping_a_process_stops_its_whole_group(tmp_path):
    procs = processes.Processes(tmp_path, dict(os.environ), processes.MemorySampler())
    # A leader that forks a child which would outlive it; both must be gone.
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
    script += "print('up', flush=True); time.sleep(60)"
    proc = procs.spawn("sleepers", [sys.executable, "-c", script], "jobplatform.settings.test")
    log = tmp_path / "sleepers-0.log"
    deadline = time.monotonic() + 20
    while log.read_text() != "up\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    [child] = psutil.Process(proc.pid).children()
    procs.stop(proc, grace=5)
    assert proc.returncode is not None
    assert _gone(child)


def test_stop_all_stops_every_group_and_an_unstarted_sampler_stops_quietly(tmp_path):
    sampler = processes.MemorySampler()
    procs = processes.Processes(tmp_path, dict(os.environ), sampler)
    started = [procs.spawn(f"p{n}", [sys.executable, "-c", "import time; time.sleep(60)"], "x") for n in range(2)]
    sampler.stop()  # never started: the cleanup after a failed setup goes on
    procs.stop_all()
    assert all(p.returncode is not None for p in started)


def test_memory_sampler_keeps_the_peak_of_a_watched_tree():
    sampler = processes.MemorySampler()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"], stdout=subprocess.PIPE
    )
    try:
        assert child.stdout.readline() == b"up\n"  # a Python running, not a process still exec'ing (< 1 MB)
        sampler.watch("tree", os.getpid(), children_only=True)
        sampler.watch("gone", 2**22 + 1, children_only=False)  # no such process: skipped
        sampler.sample()
        assert sampler.peak_mb["tree"] > 1
        assert "gone" not in sampler.peak_mb
        sampler.unwatch("tree")
        assert "tree" not in sampler.roots
    finally:
        child.kill()
        child.wait()


# -- py-spy --------------------------------------------------------------------------------
def test_collapsed_stacks_summary__self_and_inclusive_shares(tmp_path):
    collapsed = tmp_path / "create.txt"
    collapsed.write_text(
        "handle (gunicorn/workers/sync.py:10);view (/x/site-packages/rest_framework/views.py:5);"
        "execute (jobs/db.py:3) 30\n"
        "handle (gunicorn/workers/sync.py:10);view (/x/site-packages/rest_framework/views.py:6);"
        "render (/x/site-packages/rest_framework/renderers.py:9) 10\n"
    )
    summary = profile.summarize_collapsed(collapsed)
    assert summary["samples"] == 40
    assert summary["self"] == [("execute (jobs/db.py)", 75.0), ("render (rest_framework/renderers.py)", 25.0)]
    inclusive = dict(summary["inclusive"])
    assert inclusive == {"execute (jobs/db.py)": 75.0, "render (rest_framework/renderers.py)": 25.0}
    # handle and view are on every stack (the trunk, both lines of view as one function): left out.


def test_collapsed_stacks_summary__focus_keeps_only_stacks_through_a_function(tmp_path):
    collapsed = tmp_path / "execute.txt"
    collapsed.write_text(
        'process 1:"qcluster";worker (/x/site-packages/django_q/worker.py:40);execute_job (jobs/worker.py:80) 9\n'
        'process 2:"qcluster";pusher (/x/site-packages/django_q/pusher.py:12) 91\n'
    )
    summary = profile.summarize_collapsed(collapsed, focus="worker (django_q/worker.py)")
    assert summary["samples"] == 9
    assert summary["self"] == [("execute_job (jobs/worker.py)", 100.0)]


class _FakeProfile:
    """Stands in for py-spy (attaching needs ptrace rights the test machine may not give)."""

    started: list[tuple] = []
    stopped = 0

    def __init__(self, out, pid, **options) -> None:
        _FakeProfile.started.append((out.name, pid, options))

    def stop(self) -> dict:
        _FakeProfile.stopped += 1
        return {"samples": 7}


def test_recorded_keeps_the_summary_of_a_run_that_finished_and_not_of_one_that_failed(tmp_path, monkeypatch):
    monkeypatch.setattr(profile, "Profile", _FakeProfile)
    _FakeProfile.started, _FakeProfile.stopped = [], 0
    details: dict = {}
    with profile.recorded(tmp_path, "execute", 42, details, subprocesses=True):
        pass
    with pytest.raises(RuntimeError), profile.recorded(tmp_path, "read", 43, details):
        raise RuntimeError("wrk failed")
    assert _FakeProfile.started == [("execute.txt", 42, {"subprocesses": True}), ("read.txt", 43, {})]
    assert _FakeProfile.stopped == 2  # the failed run's profiler is stopped too
    assert details == {"profile_execute": {"samples": 7}}
