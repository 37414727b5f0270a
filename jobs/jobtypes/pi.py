"""``pi``: π to a number of decimals, exact, by Chudnovsky binary splitting."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import gmpy2
from rest_framework import serializers

from jobs.registry import JobType, registry
from jobs.runtime.context import JobContext

_C3_OVER_24 = 640320**3 // 24
_DIGITS_PER_TERM = 14.181647462725477  # log10(640320³ / 1728)


def _split(a: int, b: int) -> tuple[Any, Any, Any]:
    """P(a,b), Q(a,b), T(a,b) of the Chudnovsky series by binary splitting."""
    if b - a == 1:
        if a == 0:
            p = q = gmpy2.mpz(1)
        else:
            p = gmpy2.mpz((6 * a - 5) * (2 * a - 1) * (6 * a - 1))
            q = gmpy2.mpz(a) * a * a * _C3_OVER_24
        t = p * (13591409 + 545140134 * a)
        return p, q, (-t if a & 1 else t)
    m = (a + b) // 2
    p1, q1, t1 = _split(a, m)
    p2, q2, t2 = _split(m, b)
    return p1 * p2, q1 * q2, q2 * t1 + p1 * t2


def pi_scaled(digits: int, progress: Callable[[int, int], None] | None = None) -> Any:
    """floor-ish(π · 10^digits), accurate to a few units in the last place."""
    terms = int(digits / _DIGITS_PER_TERM) + 2
    chunks = max(1, min(20, terms // 50))
    bounds = [terms * i // chunks for i in range(chunks + 1)]
    P = Q = T = None
    for index, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        p, q, t = _split(lo, hi)
        if P is None:
            P, Q, T = p, q, t
        else:  # merge the next chunk exactly as the recursion would
            P, Q, T = P * p, Q * q, q * T + P * t
        if progress is not None:
            progress(index + 1, chunks)
    one = gmpy2.mpz(10) ** digits
    sqrt_c = gmpy2.isqrt(10005 * one * one)
    return (Q * 426880 * sqrt_c) // T


def pi_digits(digits: int, progress: Callable[[int, int], None] | None = None) -> str:
    """π truncated (not rounded) to ``digits`` decimals, exactly: guard digits are added
    until the truncation cannot be disturbed by the last-place error."""
    guard = 10
    while True:
        scaled = pi_scaled(digits + guard, progress)
        head, tail = divmod(scaled, gmpy2.mpz(10) ** guard)
        # The computed value is within a few units of the truth; only a tail of all
        # 0s or all 9s near the cut could change the kept digits.
        if 100 < tail < 10**guard - 100:
            text = head.digits(10)
            return f"{text[0]}.{text[1:]}"
        guard *= 2


@registry.register
class Pi(JobType):
    """π to the given number of decimals, exact (truncated, not rounded)."""

    name = "pi"
    timeout = 600

    class Params(serializers.Serializer):
        digits = serializers.IntegerField(min_value=1, max_value=100_000, help_text="Decimals after the point.")

    def run(self, ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
        digits = params["digits"]
        value = pi_digits(
            digits, lambda done, total: ctx.progress(95.0 * done / total, f"series chunk {done} of {total}")
        )
        return {"digits": digits, "value": value}
