"""How long to wait before the next try: of a job's attempt, of a callback's delivery."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base: float, cap: float, rand: float | None = None) -> float:
    """Exponential backoff with equal jitter: between half and all of min(cap, base·2^(n-1))."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    r = random.random() if rand is None else rand
    return ceiling / 2 + ceiling / 2 * r
