"""When a schedule fires: its definition (a five-field cron expression in an IANA time
zone, or a fixed interval), the fire time after a fire time, and what one maintenance
pass does with the fire times that have come (fire each, or treat the missed ones by the
schedule's ``catch_up``).

Pure: no database and no clock of its own. The caller passes the database's ``now()``,
so no cluster's clock decides anything, and every fire time follows from the schedule's
definition and its stored ``next_fire_at`` alone (the same answer in every cluster).

Cron expressions are evaluated by cronsim (docs/schedules.md says why that library). Its
DST handling is Debian cron's, on local wall-clock times:

- a local time skipped when the clocks go forward (02:30 in New York on the spring-forward
  day) fires once, at the first instant after the gap (03:00 local);
- a local time that happens twice when the clocks go back (01:30 in New York on the
  fall-back day) fires once, at its first occurrence;
- expressions that fire more often than hourly (``*/15 * * * *``) follow real time: they
  fire through the repeated hour too, at every matching instant.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cronsim import CronSim, CronSimError

from jobs.domain import CatchUp, iso_utc

#: One microsecond: timestamptz's resolution, the step from "after" to "at or after".
TICK = timedelta(microseconds=1)
#: Longest cron expression accepted (characters).
CRON_MAX_LENGTH = 200
#: Missed fire times listed one by one in a schedule's history; the rest are counted.
MISSED_LISTED = 100
#: Missed cron fire times counted one by one; past this, the count is given as unknown.
MISSED_COUNTED = 10_000


#: Names the system's zone database holds that are no IANA zone: ``localtime`` is each
#: machine's own zone (clusters on different machines would disagree on every fire time),
#: ``Factory`` a placeholder with no offset meant, ``posixrules`` a template file.
NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - NOT_ZONES


def timezone_problem(name: Any) -> str | None:
    """What is wrong with a time zone name (None: it is a known IANA name)."""
    if not isinstance(name, str) or not name:
        return "Give an IANA time zone name, e.g. Europe/Lisbon or UTC."
    if name not in _known_zones():
        return f"Unknown time zone {name[:60]!r}; give an IANA name, e.g. Europe/Lisbon or UTC."
    return None


def cron_problem(expression: Any) -> str | None:
    """What is wrong with a cron expression (None: five fields cronsim accepts, that match
    some time in the next 50 years). The library's own message names the bad field."""
    if not isinstance(expression, str) or not expression.strip():
        return "Give a cron expression of five fields: minute hour day-of-month month day-of-week."
    if len(expression) > CRON_MAX_LENGTH or "\x00" in expression:
        return f"Give a cron expression of at most {CRON_MAX_LENGTH} characters (no NUL)."
    if len(expression.split()) != 5:
        return "Give exactly five fields: minute hour day-of-month month day-of-week (no seconds field)."
    try:
        iterator = CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        if str(exc) == "Bad day-of-month" and _valid_in_some_month(expression):
            return (
                "Bad day-of-month: no month given has such a day (30 in February, 31 in April), "
                "so this expression would never fire."
            )
        return f"{exc}." if str(exc) else "Invalid cron expression."
    except (ValueError, TypeError, IndexError, OverflowError, KeyError):
        # Anything else the parser trips on is the expression's fault too, never a 500.
        return "Invalid cron expression."
    try:
        next(iterator)
    except StopIteration:
        return "This expression matches no time (in 50 years from any start)."
    except (ValueError, OverflowError):
        return "Invalid cron expression."
    return None


def _valid_in_some_month(expression: str) -> bool:
    """Whether the expression parses with its month field as ``*`` (cronsim refuses a
    day-of-month none of the months given has with the words it uses for 32)."""
    minute, hour, day, _, weekday = expression.split()
    try:
        CronSim(f"{minute} {hour} {day} * {weekday}", datetime(2000, 1, 1, tzinfo=UTC))
    except (CronSimError, ValueError, TypeError, IndexError, OverflowError, KeyError):
        return False
    return True


@dataclass(frozen=True)
class Timing:
    """A schedule's definition of its fire times: ``cron`` in ``timezone``, or every
    ``every`` seconds (then fire times are ``next_fire_at + k·every``)."""

    cron: str | None = None
    timezone: str | None = None
    every: int | None = None

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError("a Timing is either cron (with timezone) or every")

    @classmethod
    def of(cls, schedule: Any) -> Timing:
        """The timing of a :class:`jobs.domain.Schedule` (or anything with its fields)."""
        return cls(cron=schedule.cron, timezone=schedule.timezone, every=schedule.every_seconds)

    @property
    def step(self) -> timedelta | None:
        return timedelta(seconds=self.every) if self.every is not None else None

    def _cron_after(self, instant: datetime) -> datetime | None:
        assert self.cron is not None and self.timezone is not None
        try:
            for local in CronSim(self.cron, instant.astimezone(zoneinfo.ZoneInfo(self.timezone))):
                # From inside a repeated hour (the clocks went back, the instant is its second
                # pass), cronsim gives a once-a-day time's first occurrence, already past:
                # that day's fire time was then, so the answer is the next one.
                if (fire_time := local.astimezone(UTC)) > instant:
                    return fire_time
        except OverflowError:  # past year 9999
            return None
        return None

    def following(self, fire_time: datetime) -> datetime | None:
        """The fire time after ``fire_time`` (None: there is none)."""
        if self.step is not None:
            try:
                return fire_time + self.step
            except OverflowError:
                return None
        return self._cron_after(fire_time)

    def first_after(self, instant: datetime, *, anchor: datetime | None = None) -> datetime | None:
        """The first fire time strictly after ``instant``. For an interval, on the lattice
        ``anchor + k·every`` (any whole k); without an anchor, ``instant + every``."""
        if self.step is None:
            return self._cron_after(instant)
        if anchor is None:
            return instant + self.step
        k = (instant - anchor) // self.step + 1
        return anchor + k * self.step

    def first_from(self, instant: datetime, *, anchor: datetime | None = None) -> datetime | None:
        """The first fire time at or after ``instant`` (see :meth:`first_after`)."""
        if self.step is not None and anchor is None:
            return instant
        return self.first_after(instant - TICK, anchor=anchor)


@dataclass(frozen=True)
class Missed:
    """Fire times a pass reached too late (more than the grace after each)."""

    #: How many; None when more than :data:`MISSED_COUNTED` cron fire times.
    count: int | None
    first: datetime
    last: datetime
    #: The first :data:`MISSED_LISTED` of them.
    listed: tuple[datetime, ...]

    def as_data(self) -> dict[str, Any]:
        """As a history entry records them (ISO 8601, UTC)."""
        return {
            "count": self.count,
            # The floor when they were too many to count (the metrics add it up).
            **({"at_least": MISSED_COUNTED} if self.count is None else {}),
            "first": iso_utc(self.first),
            "last": iso_utc(self.last),
            "fire_times": [iso_utc(t) for t in self.listed],
        }


@dataclass(frozen=True)
class Plan:
    """What one pass does for one due schedule."""

    #: Fire times that each create one job, in order.
    fire: tuple[datetime, ...]
    #: Fire times missed (older than the grace), or None.
    missed: Missed | None
    #: ``catch_up: once``: the fire time of the one job standing for every missed one.
    fold_into: datetime | None
    #: The earliest fire time not handled; None when none is left (before ``ends_at``).
    next_fire_at: datetime | None


def _missed(timing: Timing, start: datetime, stop: datetime) -> tuple[Missed | None, datetime | None]:
    """The fire times from ``start`` (a fire time) strictly before ``stop``, and the first
    fire time at or after ``stop`` (None: none)."""
    if start >= stop:
        return None, start
    step = timing.step
    if step is not None:
        count = -((start - stop) // step)  # ceil((stop - start) / step): lattice points in [start, stop)
        listed = tuple(start + i * step for i in range(min(count, MISSED_LISTED)))
        last = start + (count - 1) * step
        return Missed(count, start, last, listed), timing.following(last)
    listed_times: list[datetime] = []
    count: int | None = 0
    last = start
    current: datetime | None = start
    while current is not None and current < stop:
        if count is not None and count >= MISSED_COUNTED:
            # Too many to count one by one (a per-minute schedule down for weeks): jump to
            # the last one before stop, and give the count as unknown.
            count = None
            assert timing.cron is not None and timing.timezone is not None
            local_stop = stop.astimezone(zoneinfo.ZoneInfo(timing.timezone))
            last = next(CronSim(timing.cron, local_stop, reverse=True)).astimezone(UTC)
            current = timing.first_from(stop)
            break
        if len(listed_times) < MISSED_LISTED:
            listed_times.append(current)
        last = current
        count = (count or 0) + 1
        current = timing.following(current)
    return Missed(count, start, last, tuple(listed_times)), current


def plan(
    timing: Timing,
    *,
    next_fire_at: datetime,
    now: datetime,
    grace: float,
    catch_up: CatchUp,
    ends_at: datetime | None = None,
    limit: int = 1000,
) -> Plan:
    """What a pass at ``now`` (the database's clock) does for a schedule whose earliest
    unhandled fire time is ``next_fire_at``.

    A fire time at most ``grace`` seconds old fires: one job each, at most ``limit`` in
    one pass (the rest stay due for the next pass). Older ones were missed (no cluster
    could fire them in time): ``catch_up: once`` makes one job of them all, carrying the
    latest missed fire time; ``skip`` makes none. Fire times after ``ends_at`` never fire.
    """
    horizon = now if ends_at is None else min(now, ends_at)
    cutoff = now - timedelta(seconds=grace)
    missed: Missed | None = None
    current: datetime | None = next_fire_at
    if next_fire_at < cutoff and next_fire_at <= horizon:
        # Missed ones: before the cutoff, and not after ends_at.
        stop = min(cutoff, horizon + TICK)
        missed, current = _missed(timing, next_fire_at, stop)
    fire: list[datetime] = []
    while current is not None and current <= horizon and len(fire) < limit:
        fire.append(current)
        current = timing.following(current)
    if current is not None and ends_at is not None and current > ends_at:
        current = None
    fold_into = missed.last if missed is not None and catch_up is CatchUp.ONCE else None
    return Plan(fire=tuple(fire), missed=missed, fold_into=fold_into, next_fire_at=current)


def plans(
    timing: Timing,
    *,
    next_fire_at: datetime,
    now: datetime,
    grace: float,
    catch_up: CatchUp,
    ends_at: datetime | None = None,
    limit: int = 1000,
    failed_at: datetime | None = None,
) -> tuple[Plan, ...]:
    """What a pass at ``now`` does, in order: :func:`plan`, or, when a pass first failed on
    this ``next_fire_at`` at ``failed_at``, the failed pass replayed at that instant and
    then a pass at ``now`` from where it leaves off. A fire time that was on time when the
    failed pass tried it fires however late the retry comes; one already late then, or
    come due while the schedule could not fire, follows ``catch_up`` as after an outage."""

    def at(instant: datetime, start: datetime, most: int) -> Plan:
        return plan(
            timing, next_fire_at=start, now=instant, grace=grace, catch_up=catch_up, ends_at=ends_at, limit=most
        )

    if failed_at is None or failed_at >= now:
        return (at(now, next_fire_at, limit),)
    replayed = at(failed_at, next_fire_at, limit)
    if replayed.next_fire_at is None or len(replayed.fire) >= limit:
        return (replayed,)
    return replayed, at(now, replayed.next_fire_at, limit - len(replayed.fire))
