"""The side-by-side benchmark (``python -m benchmarks`` or ``scripts/bench``).

Also a Django app, installed only in the benchmark's own processes
(``EXTRA_INSTALLED_APPS=benchmarks``), so its trivial job type exists there and nowhere
else. See README.md, "Benchmark".
"""
