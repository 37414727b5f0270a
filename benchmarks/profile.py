"""py-spy profiles (``scripts/bench --py-spy DIR``): recorded as collapsed stacks while a
run lasts, summarised as the busiest functions by own and by inclusive time."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import ROOT


class Profile:
    """``py-spy record`` in raw (collapsed stacks) format, stopped with SIGINT."""

    def __init__(self, out: Path, pid: int, *, subprocesses: bool = False, focus: str | None = None) -> None:
        self.focus = focus
        args = ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "-o", str(out)]
        if subprocesses:
            args.append("--subprocesses")
        self.out = out
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached before the load starts

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return summarize_collapsed(self.out, focus=self.focus)


@contextlib.contextmanager
def recorded(directory: Path, name: str, pid: int, details: dict[str, Any], **options: Any) -> Iterator[None]:
    """Profile ``pid`` into ``directory/<name>.txt`` while the block runs and put the
    summary in ``details["profile_<name>"]``. A block that fails stops the profiler and
    keeps no summary."""
    profile = Profile(directory / f"{name}.txt", pid, **options)
    try:
        yield
    except BaseException:
        profile.stop()
        raise
    details[f"profile_{name}"] = profile.stop()


def _frame_key(frame: str) -> str:
    """``func (path/file.py:12)`` → ``func (file.py)``: shares per function, not per line."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


def summarize_collapsed(path: Path, top: int = 15, focus: str | None = None) -> dict[str, Any]:
    """Self and inclusive shares of the busiest functions in a collapsed-stack file.

    ``focus`` keeps only the stacks through that function (for a cluster: its workers'
    task loop, not the sentinel or the pusher). Functions on (nearly) every stack, the
    entry trunk, are left out of the inclusive list.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if path.exists():
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_frame_key(f) for f in stack.split(";") if not f.startswith("process ")]
            if not frames or (focus is not None and focus not in frames):
                continue
            total += count
            own[frames[-1]] += count
            for key in set(frames):
                inclusive[key] += count
    share = (lambda c: round(100 * c / total, 1)) if total else (lambda c: 0.0)
    branches = [(k, share(c)) for k, c in inclusive.most_common() if c < 0.95 * total]
    return {
        "samples": total,
        "file": str(path),
        "focus": focus,
        "self": [(k, share(c)) for k, c in own.most_common(top)],
        "inclusive": branches[: top * 2],
    }
