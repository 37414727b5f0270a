"""What a running attempt records, with no database: the context's checkpoint and log,
the log buffer's batches and bounds, the checks of a checkpoint state and of a log line."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest

from jobs import services
from jobs.exceptions import DatabaseUnavailable, InvalidCheckpoint, JobCancelled, StaleRun
from jobs.runtime.context import JobContext
from jobs.runtime.journal import BATCH, HELD_MAX, LogBuffer
from jobs.services.checkpoints import CheckpointSaved

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeJournal:
    """Records what the context stores; ``answer`` is what the next write does."""

    def __init__(self) -> None:
        self.checkpoints: list[tuple[object, bool, int]] = []
        self.batches: list[tuple[list[dict], int]] = []
        #: The notes on lines dropped for the rate, as written (outside the job's room).
        self.notes: list[dict] = []
        self.answer: object = None
        self.room = 10_000

    def checkpoint(self, state, *, event, skipped):
        if isinstance(self.answer, Exception):
            raise self.answer
        checked = services.checkpoint_check(state)
        self.checkpoints.append((checked.state, event, skipped))
        return CheckpointSaved(state=checked.state, at=NOW, cancel_requested=self.answer == "cancel")

    def log(self, lines, *, dropped, notes):
        if isinstance(self.answer, Exception):
            raise self.answer
        self.batches.append((list(lines), dropped))
        self.notes.extend(notes)
        self.room -= len(lines)
        return max(self.room, 0)

    def messages(self) -> list[str]:
        return [line["message"] for lines, _ in self.batches for line in lines]


def make_ctx(checkpoint_state=None):
    journal, clock = FakeJournal(), FakeClock()
    ctx = JobContext(
        job_id=uuid.uuid4(),
        attempt=2,
        job_type="t",
        metadata={},
        report=lambda *args: False,
        journal=journal,
        checkpoint_state=checkpoint_state,
        clock=clock,
    )
    return ctx, journal, clock


# -- checkpoints ----------------------------------------------------------------------------
def test_checkpoint_state_is_what_the_previous_attempt_left_then_what_this_one_stored():
    ctx, journal, _ = make_ctx(checkpoint_state={"done": 40})
    assert ctx.checkpoint_state == {"done": 40}
    state = {"done": 41}
    ctx.checkpoint(state)
    state["done"] = 999  # a later change to the caller's object is not the stored state
    assert ctx.checkpoint_state == {"done": 41} and journal.checkpoints == [({"done": 41}, True, 0)]
    assert make_ctx()[0].checkpoint_state is None


def test_every_checkpoint_is_stored_but_events_are_throttled(settings):
    settings.JOBS = {**settings.JOBS, "CHECKPOINT_EVENT_INTERVAL": 10.0}
    ctx, journal, clock = make_ctx()
    for n in range(25):
        ctx.checkpoint({"n": n})
        clock.now += 1.0  # one a second
    assert [state["n"] for state, _, _ in journal.checkpoints] == list(range(25))
    events = [(state["n"], skipped) for state, event, skipped in journal.checkpoints if event]
    assert events == [(0, 0), (10, 9), (20, 9)]


def test_a_stale_runs_checkpoint_raises_and_marks_the_run_lost():
    ctx, journal, _ = make_ctx()
    journal.answer = StaleRun()
    with pytest.raises(StaleRun):
        ctx.checkpoint({"n": 1})
    assert ctx.checkpoint_state is None
    with pytest.raises(StaleRun):
        ctx.raise_if_cancelled()


def test_a_checkpoint_stores_then_tells_the_job_it_was_cancelled():
    ctx, journal, _ = make_ctx()
    journal.answer = "cancel"
    with pytest.raises(JobCancelled):
        ctx.checkpoint({"n": 7})
    assert ctx.checkpoint_state == {"n": 7} and journal.checkpoints == [({"n": 7}, True, 0)]


def test_log_lines_are_written_before_the_checkpoint():
    ctx, journal, _ = make_ctx()
    ctx.log("batch 1 sent", rows=500)
    assert journal.batches == []  # cheap: nothing written yet
    ctx.checkpoint({"batch": 1})
    assert journal.messages() == ["batch 1 sent"] and journal.batches[0][0][0]["fields"] == {"rows": 500}


def test_a_checkpoint_waits_for_its_log_lines_through_an_outage(monkeypatch):
    """The lines logged before a checkpoint are stored before it, even when the database
    blinks between the two: the flush is retried, the checkpoint does not go first."""
    monkeypatch.setattr("jobs.db.reset", lambda: None)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    ctx, journal, _ = make_ctx()
    ctx.log("batch 1 sent")
    writes = []
    real_log = journal.log

    def log_fails_once(lines, *, dropped, notes):
        writes.append(len(lines))
        if len(writes) == 1:
            raise DatabaseUnavailable("blink")
        return real_log(lines, dropped=dropped, notes=notes)

    journal.log = log_fails_once
    ctx.checkpoint({"batch": 1})
    assert writes == [1, 1] and journal.messages() == ["batch 1 sent"]
    assert journal.checkpoints == [({"batch": 1}, True, 0)]


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"blob": "x" * 70_000}, "65536"),
        (float("inf"), "not JSON"),
        ({1, 2}, "not JSON"),
        ({"k": "\x00"}, "NUL"),
        ({"k": "\ud800"}, "valid Unicode"),
    ],
)
def test_a_state_that_cannot_be_stored_raises_invalid_checkpoint(state, reason):
    with pytest.raises(InvalidCheckpoint, match=reason):
        services.checkpoint_check(state)


def test_any_json_value_is_a_state_and_its_size_is_its_compact_json():
    assert services.checkpoint_check(None).state is None
    checked = services.checkpoint_check({"ids": [1, 2], "é": True})
    assert checked.size == len('{"ids":[1,2],"é":true}'.encode()) and checked.state == {"ids": [1, 2], "é": True}


def test_a_context_without_a_journal_says_so():
    ctx = JobContext(job_id=uuid.uuid4(), attempt=1, job_type="t", metadata={}, report=lambda *a: False)
    with pytest.raises(RuntimeError, match="no journal"):
        ctx.checkpoint({})
    with pytest.raises(RuntimeError, match="no journal"):
        ctx.log("x")


# -- log lines --------------------------------------------------------------------------------
def test_a_log_line_has_a_known_level_and_bounded_text(settings):
    settings.JOBS = {**settings.JOBS, "LOG_MESSAGE_MAX": 50}
    line = services.log_line(message="m" * 55, level="warning", fields={"id": uuid.UUID(int=1)}, at=NOW)
    assert line == {
        "at": NOW.isoformat(),
        "level": "warning",
        "message": "m" * 50 + "… [5 characters cut]",
        "fields": {"id": "00000000-0000-0000-0000-000000000001"},
    }
    with pytest.raises(ValueError, match="level must be one of debug, info, warning, error, not 'fatal'"):
        services.log_line(message="x", level="fatal", fields={}, at=NOW)
    cut = services.log_line(message="x", level="info", fields={"big": "y" * 60}, at=NOW)["fields"]
    assert list(cut) == ["fields_cut"] and cut["fields_cut"].endswith("characters cut]")


def test_log_fields_become_json_postgresql_keeps():
    line = services.log_line(
        message="a\x00b", level="debug", fields={"nan": float("nan"), "lone": "\udc80", "nested": {"t": (1, 2)}}, at=NOW
    )
    assert line["message"] == "a\ufffdb"
    assert line["fields"] == {"nan": "nan", "lone": "?", "nested": {"t": [1, 2]}}


def test_lines_wait_for_a_batch_or_the_flush_interval(settings):
    settings.JOBS = {**settings.JOBS, "LOG_FLUSH_INTERVAL": 1.0, "LOG_MAX_PER_SECOND": 10_000}
    ctx, journal, clock = make_ctx()
    for n in range(BATCH - 1):
        ctx.log(f"line {n}")
    assert journal.batches == []
    ctx.log("the hundredth")  # a full batch is written at once
    assert len(journal.batches) == 1 and len(journal.batches[0][0]) == BATCH
    ctx.log("alone")
    clock.now += 0.5
    ctx.flush_log(if_due=True)  # the heartbeat: not due yet
    assert len(journal.batches) == 1
    clock.now += 0.6
    ctx.flush_log(if_due=True)
    assert journal.messages()[-1] == "alone" and len(journal.batches) == 2
    ctx.flush_log()  # nothing waiting: no write
    assert len(journal.batches) == 2


def test_lines_over_the_per_second_bound_are_counted_and_noted(settings):
    settings.JOBS = {**settings.JOBS, "LOG_MAX_PER_SECOND": 5, "LOG_FLUSH_INTERVAL": 60}
    ctx, journal, clock = make_ctx()
    for n in range(12):
        ctx.log(f"first second {n}")
    clock.now += 1.0
    for n in range(3):
        ctx.log(f"next second {n}")
    ctx.flush_log()
    assert sum(dropped for _, dropped in journal.batches) == 7
    assert journal.messages() == [
        *(f"first second {n}" for n in range(5)),
        *(f"next second {n}" for n in range(3)),
    ]
    [note] = journal.notes
    assert note["message"].startswith("7 log lines dropped since ") and note["level"] == "warning"
    assert note["message"].endswith(" UTC (over JOBS_LOG_MAX_PER_SECOND, 5 per second)")
    assert note["fields"] == {"dropped": 7}


def test_a_tight_loop_gets_one_note_a_second_however_often_the_log_is_written(settings):
    # The flood a user met: a job that checkpoints every few rows writes its log every few
    # rows; one note per write would be hundreds of "1 log lines dropped" lines.
    settings.JOBS = {**settings.JOBS, "LOG_MAX_PER_SECOND": 100, "LOG_FLUSH_INTERVAL": 1.0}
    ctx, journal, clock = make_ctx()
    start = clock.now
    noted_at: list[float] = []
    for n in range(30_000):  # 3 seconds at 10,000 lines a second
        clock.now = start + n / 10_000
        ctx.log(f"row {n}")
        if n % 10 == 9:
            ctx.checkpoint({"row": n})
        if len(journal.notes) > len(noted_at):
            noted_at.append(clock.now)
    clock.now = start + 3.0
    ctx.log("the last line")  # a new second: kept
    ctx.flush_log(last=True)  # what the worker does before the outcome
    kept = journal.messages()
    dropped = sum(count for _, count in journal.batches)
    assert len(kept) == 301 and kept[-1] == "the last line" and len(kept) + dropped == 30_001
    # One note a second (the last second's with the attempt's end), counting every line
    # the rate dropped, each a second after the one before.
    assert len(journal.notes) == 3 and len(noted_at) == 2
    assert noted_at[1] - noted_at[0] >= 1.0
    assert sum(note["fields"]["dropped"] for note in journal.notes) == dropped == 29_700
    # The notes took none of the job's room: only its own lines were counted against it.
    assert journal.room == 10_000 - len(kept)


def test_a_note_waits_a_second_after_the_previous_one_and_counts_in_good_english(settings):
    settings.JOBS = {**settings.JOBS, "LOG_MAX_PER_SECOND": 1, "LOG_FLUSH_INTERVAL": 0.0}
    ctx, journal, clock = make_ctx()
    ctx.log("kept")
    ctx.log("dropped 1")  # a flush is due at once (interval 0), but the note is not
    assert journal.notes == [] and journal.batches[-1][1] == 1
    clock.now += 1.0
    ctx.log("kept too")  # a new window: kept, and the first drop is a second old: noted
    assert [note["message"].split(" since ")[0] for note in journal.notes] == ["1 log line dropped"]
    for n in range(37):
        ctx.log(f"over {n}")
    clock.now += 0.5
    ctx.flush_log()
    assert len(journal.notes) == 1  # half a second after the last note: not yet
    clock.now += 0.5
    assert ctx._log is not None and ctx._log.due()  # the heartbeat writes it, even if the job went quiet
    ctx.flush_log(if_due=True)
    assert journal.notes[-1]["message"].startswith("37 log lines dropped since ")
    ctx.log("kept at last")
    ctx.log("over again")
    ctx.flush_log(last=True)  # the attempt's end: its last note goes, whatever the time
    assert journal.notes[-1]["message"].startswith("1 log line dropped since ")
    assert [n["fields"]["dropped"] for n in journal.notes] == [1, 37, 1]


def test_a_note_waits_out_an_outage_with_the_lines(settings):
    settings.JOBS = {**settings.JOBS, "LOG_MAX_PER_SECOND": 2, "LOG_FLUSH_INTERVAL": 60}
    ctx, journal, clock = make_ctx()
    for n in range(5):
        ctx.log(f"line {n}")
    clock.now += 1.0
    journal.answer = DatabaseUnavailable()
    with pytest.raises(DatabaseUnavailable):
        ctx.flush_log()
    assert journal.notes == []
    journal.answer = None
    clock.now += 0.1
    ctx.log("after")
    ctx.flush_log()
    assert [line["message"] for line in journal.batches[0][0]] == ["line 0", "line 1", "after"]
    assert [note["fields"] for note in journal.notes] == [{"dropped": 3}]


def test_once_the_job_keeps_no_more_lines_they_are_only_counted(settings):
    settings.JOBS = {**settings.JOBS, "LOG_MAX_PER_SECOND": 10_000, "LOG_FLUSH_INTERVAL": 60}
    ctx, journal, _ = make_ctx()
    journal.room = 3
    for n in range(5):
        ctx.log(f"line {n}")
    ctx.flush_log()  # the database keeps 3 (the fake: room 0 left)
    for n in range(4):
        ctx.log(f"more {n}")
    ctx.flush_log()
    assert journal.batches[1] == ([], 4)  # nothing sent but the count


def test_an_outage_keeps_the_lines_for_the_next_flush_up_to_a_bound(settings):
    settings.JOBS = {**settings.JOBS, "LOG_MAX_PER_SECOND": 100_000, "LOG_FLUSH_INTERVAL": 60}
    written: list[tuple[list[dict], int]] = []
    failing = [True]

    def write(lines, notes, dropped):
        if failing[0]:
            raise DatabaseUnavailable()
        written.append((lines, dropped))
        return 10**6

    buffer = LogBuffer(write, clock=FakeClock())
    for n in range(HELD_MAX + 50):
        buffer.append({"message": n})
        if n % BATCH == BATCH - 1:
            with pytest.raises(DatabaseUnavailable):
                buffer.flush()
    failing[0] = False
    buffer.flush()
    [(lines, dropped)] = written
    assert [line["message"] for line in lines] == list(range(HELD_MAX))  # in order, the oldest kept
    assert dropped == 50


def test_a_stale_run_loses_its_lines_and_is_marked_lost():
    ctx, journal, _ = make_ctx()
    ctx.log("said")
    journal.answer = StaleRun()
    with pytest.raises(StaleRun):
        ctx.flush_log()
    with pytest.raises(StaleRun):
        ctx.raise_if_cancelled()


def test_the_heartbeat_never_waits_for_the_jobs_own_flush(settings):
    settings.JOBS = {**settings.JOBS, "LOG_FLUSH_INTERVAL": 0.0}
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_write(lines, notes, dropped):
        calls.append(len(lines))
        entered.set()
        release.wait(5)
        return 100

    buffer = LogBuffer(slow_write, clock=FakeClock())
    buffer.append({"message": "a"})
    writer = threading.Thread(target=buffer.flush)
    writer.start()
    assert entered.wait(5)
    buffer.append({"message": "b"})
    buffer.flush(blocking=False)  # returns at once: a flush is under way
    release.set()
    writer.join(5)
    assert calls == [1]
    buffer.flush()
    assert calls == [1, 1]


def test_no_note_is_written_once_the_job_keeps_no_more_lines(settings):
    settings.JOBS = {**settings.JOBS, "LOG_MAX_PER_SECOND": 2, "LOG_FLUSH_INTERVAL": 60}
    ctx, journal, _ = make_ctx()
    journal.room = 2
    ctx.log("a")
    ctx.log("b")
    ctx.flush_log()  # the job is now full
    for n in range(5):
        ctx.log(f"over {n}")
    ctx.flush_log(last=True)
    assert journal.batches[1] == ([], 5) and journal.notes == []  # counted, no note: no room anyway
