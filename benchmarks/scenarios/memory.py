"""7 memory: the peak RSS of a platform gunicorn worker and of any process of the
platform cluster, sampled twice a second over the whole run, next to the baseline's
gunicorn worker and django-q2 cluster; the platform at most 120 MB."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.report import Row, check, ratio

if TYPE_CHECKING:
    from benchmarks.run import Bench

#: The figure, then the labels the processes were watched under (``benchmarks.processes``).
PAIRS = (
    ("gunicorn worker", "platform gunicorn worker", "baseline gunicorn worker"),
    ("cluster process", "platform cluster process", "baseline cluster process"),
)


def run(bench: Bench) -> None:
    bench.memory.sample()
    peaks = bench.memory.peak_mb
    bench.report.details["peak_rss_mb"] = {k: round(v, 1) for k, v in peaks.items()}
    for what, p_label, b_label in PAIRS:
        p, b = peaks.get(p_label), peaks.get(b_label)
        if p is None and b is None:
            continue
        bench.report.add(
            Row("7 memory", f"peak RSS of a {what}", p, b, ratio(p, b), "<= 120 MB", check(p, "<=", 120), "MB")
        )
