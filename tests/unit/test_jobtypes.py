"""The built-in job types' algorithms, without a database."""

from __future__ import annotations

from types import SimpleNamespace

import mpmath
import pytest

from jobs.jobtypes.fibonacci import fibonacci, to_decimal
from jobs.jobtypes.pi import pi_digits

F1000 = (
    "43466557686937456435688527675040625802564660517371780402481729089536555417949051"
    "89040387984007925516929592259308032263477520968962323987332247116164299644090653"
    "3187938298969649928516003704476137795166849228875"
)


def naive_fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 93, 94, 255, 256, 1023, 5000])
def test_fibonacci_matches_iteration(n):
    assert fibonacci(n) == naive_fib(n)


def test_fibonacci_1000_exact():
    assert to_decimal(fibonacci(1000)) == F1000


def test_fibonacci_reports_one_step_per_bit():
    steps = []
    fibonacci(1_000_000, lambda done, total: steps.append((done, total)))
    assert steps[-1] == (20, 20) and len(steps) == 20


def test_fibonacci_million_has_208988_digits():
    assert len(to_decimal(fibonacci(1_000_000))) == 208_988


@pytest.mark.parametrize("digits", [1, 2, 14, 15, 50, 761, 762, 2000])
def test_pi_matches_mpmath(digits):
    mpmath.mp.dps = digits + 30
    reference = mpmath.nstr(mpmath.pi, digits + 20, strip_zeros=False)[: digits + 2]
    assert pi_digits(digits) == reference


def test_pi_first_50():
    assert pi_digits(50) == "3.14159265358979323846264338327950288419716939937510"


def test_pi_reports_progress():
    seen = []
    pi_digits(20_000, lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] > 1


def test_countdown_says_second_and_seconds_right():
    from jobs.jobtypes.countdown import Countdown

    messages, logged = [], []
    ctx = SimpleNamespace(
        progress=lambda percent, message: messages.append(message),
        log=lambda message, level="info", **fields: logged.append((level, message, fields)),
        sleep=lambda seconds: None,
    )
    assert Countdown().run(ctx, {"seconds": 3})["seconds"] == 3
    assert messages == ["3 seconds left", "2 seconds left", "1 second left"]
    # A log line per step too, at info: the README's walkthrough reads them.
    assert logged == [
        ("info", "3 seconds left", {"seconds_left": 3}),
        ("info", "2 seconds left", {"seconds_left": 2}),
        ("info", "1 second left", {"seconds_left": 1}),
    ]
