"""HTTP load: wrk for the throughput runs (a Lua script counts the answers that are not
2xx and prints one JSON line), a requests session for the one-at-a-time creates."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from typing import Any

# wrk's Lua: count non-2xx answers per thread, add them up in done(), print one JSON line.
WRK_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non2xx") end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "non2xx": %%d, ' ..
    '"socket_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad,
    e.connect + e.read + e.write + e.timeout))
end
wrk.headers["Authorization"] = "Token %(token)s"
%(request)s
"""
WRK_POST = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '%s'
"""


def wrk_script(token: str, body: dict[str, Any] | None) -> str:
    """The Lua script of one run: a GET, or a POST of ``body`` as JSON."""
    request = WRK_POST % json.dumps(body) if body is not None else ""
    return WRK_LUA % {"token": token, "request": request}


def wrk(url: str, token: str, body: dict[str, Any] | None, seconds: float, connections: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(wrk_script(token, body))
    duration = f"{max(1, round(seconds))}s"
    try:
        result = subprocess.run(
            ["wrk", "-t", "2", "-c", str(connections), "-d", duration, "--timeout", "10s", "-s", handle.name, url],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    finally:
        os.unlink(handle.name)
    return parse_wrk(result.stdout)


def parse_wrk(stdout: str) -> dict[str, Any]:
    """The script's JSON line, with the rate and the latencies in ms added."""
    line = next(x for x in stdout.splitlines() if x.startswith("BENCH "))
    stats = json.loads(line[len("BENCH ") :])
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    stats["p50_ms"] = stats["p50_us"] / 1000
    stats["p99_ms"] = stats["p99_us"] / 1000
    return stats


def combine_rounds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one side as one figure: requests over total time, the median round's
    p50, the worst round's p99, every error counted."""
    requests = sum(r["requests"] for r in runs)
    seconds = sum(r["duration_us"] for r in runs) / 1e6
    return {
        "rounds": runs,
        "requests": requests,
        "rps": requests / seconds,
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "non2xx": sum(r["non2xx"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
    }


def session(token: str) -> Any:
    """A requests session that authenticates with ``token``."""
    import requests

    http = requests.Session()
    http.headers["Authorization"] = f"Token {token}"
    return http


def post_job(http: Any, base_url: str, body: dict[str, Any]) -> tuple[str, float]:
    """``POST /jobs``: the new job's id and the wall-clock time its 201 arrived."""
    response = http.post(f"{base_url}/jobs", json=body, timeout=10)
    answered = time.time()
    if response.status_code != 201:
        raise RuntimeError(f"POST /jobs answered {response.status_code}: {response.text[:300]}")
    return response.json()["id"], answered
