"""The side-by-side benchmark (``python -m benchmarks`` or ``scripts/bench``).

Where to look:

- ``cli``: the command's options and ``main``; ``run``: one run (scratch database,
  servers, the scenarios in order, the cleanup);
- ``scenarios/``: one module per scenario (create, read, execute, pickup, growth,
  compute, memory), each adding its rows to the report;
- ``report``: the rows, the table and the JSON report; ``processes``: gunicorn, qcluster
  and their memory; ``database``: the scratch databases; ``load``: wrk and the HTTP
  client; ``profile``: py-spy;
- ``baseline``, ``baseline_settings``, ``tasks``: the bare Django and stock django-q2
  baselines; ``pickup`` (a script of its own): the two brokers' pickup latency.

Also a Django app, installed only in the benchmark's own processes
(``EXTRA_INSTALLED_APPS=benchmarks``), so its trivial job type exists there and nowhere
else. See docs/benchmark.md.
"""

from pathlib import Path

#: The project's root: where the started processes run, what profile paths are shown from.
ROOT = Path(__file__).resolve().parents[1]
