"""``fibonacci``: the exact n-th Fibonacci number."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from jobs.registry import JobType, registry
from jobs.runtime.context import JobContext


def fibonacci(n: int, progress: Any = None) -> int:
    """F(n) by fast doubling on Python ints: F(2k) = F(k)(2F(k+1) - F(k)),
    F(2k+1) = F(k)² + F(k+1)². One step per bit of n, most significant first."""
    a, b = 0, 1  # F(0), F(1)
    bits = n.bit_length()
    for i, bit in enumerate(bin(n)[2:] if n else ""):
        c = a * ((b << 1) - a)
        d = a * a + b * b
        a, b = (d, c + d) if bit == "1" else (c, d)
        if progress is not None:
            progress(i + 1, bits)
    return a


def to_decimal(value: int) -> str:
    """Decimal string of a big int (gmpy2 is much faster than CPython's int→str)."""
    try:
        import gmpy2

        return gmpy2.mpz(value).digits(10)
    except ImportError:  # pragma: no cover - gmpy2 is a base requirement
        import sys

        sys.set_int_max_str_digits(0)
        return str(value)


@registry.register
class Fibonacci(JobType):
    """The exact n-th Fibonacci number, as a decimal string."""

    name = "fibonacci"
    timeout = 300

    class Params(serializers.Serializer):
        n = serializers.IntegerField(min_value=0, max_value=1_000_000, help_text="Which Fibonacci number (F(0) = 0).")

    def run(self, ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
        n = params["n"]

        def report(done: int, total: int) -> None:
            # Converting to decimal is the last tenth of the work.
            ctx.progress(90.0 * done / total, f"doubling step {done} of {total}")

        value = fibonacci(n, report)
        ctx.progress(90.0, "converting to decimal")
        digits = to_decimal(value)
        return {"n": n, "value": digits, "digits": len(digits)}
