"""The named mutations: each breaks one rule the platform promises, and names the tests
that must fail when it is broken.

Each entry is data: the file (a path from the project root, written once per entry), the
exact text to search (it must occur exactly once in that file, or the runner stops with
"search text not found"), its replacement, and the pytest node ids that must catch it.
When code moves, update ``path``; when a search text no longer matches, find the rule's
new spelling and update ``search`` (never drop a mutation to make the check pass).

Mutations of the migrations' SQL (``jobs/migrations/sql/``) work like any other: every
run builds its test database from the mutated copy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    #: Unique, snake_case: ``scripts/mutate NAME`` runs this one alone.
    name: str
    #: The rule it breaks, in a few words.
    rule: str
    path: str
    search: str
    replace: str
    #: Node ids (``tests/…/test_x.py::test_y[param]``); run with ``-x`` in this order.
    tests: tuple[str, ...]


FENCING = "tests/integration/test_fencing.py"
STORE = "tests/integration/test_store.py"
MAINTENANCE = "tests/integration/test_maintenance.py"
FAIRNESS = "tests/integration/test_fairness.py"
CALLBACKS = "tests/integration/test_callbacks.py"
SCOPES = "tests/integration/test_scopes.py"
WORKER = "tests/integration/test_worker.py"
OLD_ATTEMPT_WRITES = f"{FENCING}::test_old_attempt_changes_nothing_while_a_newer_attempt_runs"
#: The fence of job_finish (succeed, fail for good, cancelled), told from the others by what follows.
FINISH_FENCE = (
    "attempts = %(attempt)s\n    RETURNING *\n), events AS (\n"
    "    INSERT INTO jobs_event (job_id, kind, attempt, data)\n    SELECT id, status, attempts,"
)
#: The lease extension of job_progress (the heartbeat's has no indent, the others no "progress").
PROGRESS_LEASE = (
    "    SET progress = %(progress)s::jsonb,\n"
    "        lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),"
)

MUTATIONS: tuple[Mutation, ...] = (
    # -- the attempt fence: a run that lost its job writes nothing ------------------------
    Mutation(
        name="fence_heartbeat",
        rule="a stale attempt's heartbeat extends the new attempt's lease",
        path="jobs/sql/jobs_write.sql",
        search="attempts = %(attempt)s\nRETURNING cancel_requested_at",
        replace="attempts >= %(attempt)s\nRETURNING cancel_requested_at",
        tests=(f"{OLD_ATTEMPT_WRITES}[heartbeat]",),
    ),
    Mutation(
        name="fence_progress",
        rule="a stale attempt's progress lands on the new attempt",
        path="jobs/sql/jobs_write.sql",
        search="attempts = %(attempt)s\n    RETURNING id, attempts,",
        replace="attempts >= %(attempt)s\n    RETURNING id, attempts,",
        tests=(f"{OLD_ATTEMPT_WRITES}[progress]",),
    ),
    Mutation(
        name="fence_finish",
        rule="a stale attempt finishes the job while a newer attempt runs",
        path="jobs/sql/jobs_write.sql",
        search=FINISH_FENCE,
        replace=FINISH_FENCE.replace("attempts = %(attempt)s", "attempts >= %(attempt)s"),
        tests=(f"{OLD_ATTEMPT_WRITES}[succeed]", f"{OLD_ATTEMPT_WRITES}[fail]"),
    ),
    Mutation(
        name="fence_retry",
        rule="a stale attempt's retryable failure reschedules the running job",
        path="jobs/sql/jobs_write.sql",
        search="attempts = %(attempt)s\n      -- a job whose application",
        replace="attempts >= %(attempt)s\n      -- a job whose application",
        tests=(f"{OLD_ATTEMPT_WRITES}[retry]",),
    ),
    Mutation(
        name="cancelled_finish_unfenced",
        rule="the 'finished as cancelled' write ignores the attempt fence",
        path="jobs/sql/jobs_write.sql",
        search=FINISH_FENCE,
        replace=FINISH_FENCE.replace("attempts = %(attempt)s", "(attempts = %(attempt)s OR %(status)s = 'cancelled')"),
        tests=(
            f"{FENCING}::test_old_attempt_cannot_cancel_the_newer_one_even_when_cancellation_was_asked",
            f"{OLD_ATTEMPT_WRITES}[cancelled]",
        ),
    ),
    Mutation(
        name="retry_despite_cancel",
        rule="a retryable failure of a job asked to stop is scheduled again",
        path="jobs/sql/jobs_write.sql",
        search="      AND cancel_requested_at IS NULL\n",
        replace="",
        tests=(f"{FENCING}::test_a_retryable_failure_after_a_cancel_request_ends_cancelled_not_retried",),
    ),
    # -- leases ---------------------------------------------------------------------------
    Mutation(
        name="heartbeat_keeps_the_lease",
        rule="the heartbeat no longer extends the lease",
        path="jobs/sql/jobs_write.sql",
        search="SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)\nWHERE id = %(id)s",
        replace="SET lease_expires_at = lease_expires_at\nWHERE id = %(id)s",
        tests=(f"{FENCING}::test_heartbeat_extends_the_lease",),
    ),
    Mutation(
        name="heartbeat_thread_never_beats",
        rule="the worker's heartbeat thread stops at once, so no lease is ever extended",
        path="jobs/runtime/heartbeats.py",
        search="    def run(self) -> None:\n        while True:\n            due = self._due()",
        replace="    def run(self) -> None:\n        while False:\n            due = self._due()",
        tests=(f"{WORKER}::test_the_heartbeat_thread_extends_leases_and_relays_cancellation_and_loss",),
    ),
    Mutation(
        name="progress_keeps_the_lease",
        rule="a progress write no longer extends the lease",
        path="jobs/sql/jobs_write.sql",
        search=PROGRESS_LEASE,
        replace=PROGRESS_LEASE.replace("now() + make_interval(secs => %(lease_seconds)s)", "lease_expires_at"),
        tests=(f"{FENCING}::test_progress_extends_the_lease_and_records_milestones",),
    ),
    # -- what the API promises about creating and listing ---------------------------------
    Mutation(
        name="list_type_filter_ignored",
        rule="GET /jobs?type= returns every type",
        path="jobs/sql/jobs_read.sql",
        search="  AND (%(type)s::text IS NULL OR type = %(type)s)\n",
        replace="  AND (%(type)s::text IS NULL OR true)\n",
        tests=("tests/integration/test_api.py::test_list_filters_each_narrow_the_results",),
    ),
    Mutation(
        name="run_at_ignored_at_create",
        rule="POST /jobs with a future run_at runs the job at once",
        path="jobs/services/lifecycle.py",
        search="        run_at=request.run_at,\n",
        replace="        run_at=None,\n",
        tests=(
            f"{STORE}::test_create__scheduled_with_delayed_envelope",
            "tests/integration/test_api.py::test_run_at_in_the_future_schedules_the_job_and_no_worker_runs_it_before",
        ),
    ),
    Mutation(
        name="claim_before_run_at",
        rule="a scheduled job can be claimed before its time",
        path="jobs/sql/jobs_write.sql",
        search="      AND (status = 'queued' OR (status = 'scheduled' AND run_at <= now()))\n      -- fairness",
        replace="      AND status IN ('queued', 'scheduled')\n      -- fairness",
        tests=(f"{STORE}::test_retry__scheduled_with_backoff_then_claimable_once_due",),
    ),
    # -- retries --------------------------------------------------------------------------
    Mutation(
        name="is_retryable_ignored",
        rule="the worker retries errors the job type calls permanent",
        path="jobs/runtime/worker.py",
        search="retryable=implementation.is_retryable(exc)",
        replace="retryable=True",
        tests=(f"{WORKER}::test_the_types_is_retryable_decides",),
    ),
    Mutation(
        name="last_attempt_retried",
        rule="a failure on the last attempt is scheduled again instead of failing",
        path="jobs/services/lifecycle.py",
        search="if not (retryable and job.attempts < job.max_attempts):",
        replace="if not (retryable and job.attempts <= job.max_attempts):",
        tests=(f"{STORE}::test_fail_after_last_attempt_keeps_each_error_in_history",),
    ),
    Mutation(
        name="type_backoff_ignored",
        rule="a job type's backoff_base is ignored",
        path="jobs/services/lifecycle.py",
        search="base = (job_type and job_type.backoff_base) or settings.BACKOFF_BASE",
        replace="base = settings.BACKOFF_BASE",
        tests=(f"{WORKER}::test_the_types_backoff_base_and_cap_set_the_delay",),
    ),
    # -- cancellation ---------------------------------------------------------------------
    Mutation(
        name="sleep_not_woken_by_cancel",
        rule="ctx.sleep() sleeps on after cancellation was asked",
        path="jobs/runtime/context.py",
        search="        self._cancel.set()\n        self._wake.set()\n",
        replace="        self._cancel.set()\n",
        tests=(
            "tests/unit/test_context_and_checks.py::"
            "test_sleep_wakes_at_once_when_a_write_learns_of_cancellation_or_a_lost_lease[cancel_requested-JobCancelled]",
        ),
    ),
    # -- nothing is deleted (the triggers; each needs a fresh schema) ----------------------
    Mutation(
        name="job_delete_trigger_dropped",
        rule="DELETE FROM jobs_job succeeds",
        path="jobs/migrations/sql/0001_initial.sql",
        search="CREATE TRIGGER jobs_job_no_delete BEFORE DELETE ON jobs_job\n"
        "    FOR EACH ROW EXECUTE FUNCTION jobs_forbid_delete();\n",
        replace="",
        tests=(f"{STORE}::test_delete_and_truncate_raise[jobs_job]",),
    ),
    Mutation(
        name="event_truncate_trigger_dropped",
        rule="TRUNCATE jobs_event succeeds",
        path="jobs/migrations/sql/0001_initial.sql",
        search="CREATE TRIGGER jobs_event_no_truncate BEFORE TRUNCATE ON jobs_event\n"
        "    FOR EACH STATEMENT EXECUTE FUNCTION jobs_forbid_delete();\n",
        replace="",
        tests=(f"{STORE}::test_delete_and_truncate_raise[jobs_event]",),
    ),
    Mutation(
        name="callback_delete_trigger_dropped",
        rule="DELETE FROM jobs_callback succeeds",
        path="jobs/migrations/sql/0005_callbacks.sql",
        search="CREATE TRIGGER jobs_callback_no_delete BEFORE DELETE ON jobs_callback\n"
        "    FOR EACH ROW EXECUTE FUNCTION jobs_forbid_delete();\n",
        replace="",
        tests=(f"{STORE}::test_delete_and_truncate_raise[jobs_callback]",),
    ),
    Mutation(
        name="terminal_state_not_final",
        rule="a finished job can be moved back to queued",
        path="jobs/migrations/sql/0001_initial.sql",
        search="    FOR EACH ROW WHEN (OLD.status IN ('succeeded', 'failed', 'cancelled'))\n",
        replace="    FOR EACH ROW WHEN (false)\n",
        tests=(f"{STORE}::test_terminal_state_is_final",),
    ),
    # -- isolation between applications ---------------------------------------------------
    Mutation(
        name="isolation_job_get",
        rule="GET /jobs/{id} shows another application's job",
        path="jobs/sql/jobs_read.sql",
        search="SELECT * FROM jobs_job WHERE id = %(id)s AND (%(app_id)s::uuid IS NULL OR app_id = %(app_id)s)\n",
        replace="SELECT * FROM jobs_job WHERE id = %(id)s AND (%(app_id)s::uuid IS NULL OR true)\n",
        tests=(f"{STORE}::test_other_apps_cannot_see_or_cancel",),
    ),
    Mutation(
        name="isolation_job_list",
        rule="GET /jobs lists other applications' jobs",
        path="jobs/sql/jobs_read.sql",
        search="(%(app_id)s::uuid IS NULL OR app_id = %(app_id)s)\n  AND (%(app_name)s",
        replace="(%(app_id)s::uuid IS NULL OR true)\n  AND (%(app_name)s",
        tests=(f"{STORE}::test_other_apps_cannot_see_or_cancel",),
    ),
    Mutation(
        name="isolation_job_events",
        rule="GET /jobs/{id}/events shows another application's history",
        path="jobs/sql/jobs_read.sql",
        search="(%(app_id)s::uuid IS NULL OR j.app_id = %(app_id)s)",
        replace="(%(app_id)s::uuid IS NULL OR true)",
        tests=(f"{STORE}::test_other_apps_cannot_see_or_cancel",),
    ),
    Mutation(
        name="isolation_job_cancel",
        rule="POST /jobs/{id}/cancel cancels another application's job",
        path="jobs/sql/jobs_write.sql",
        search="    WHERE id = %(id)s AND app_id = %(app_id)s AND status IN ('scheduled', 'queued', 'running')\n",
        replace="    WHERE id = %(id)s AND status IN ('scheduled', 'queued', 'running')\n",
        tests=(f"{STORE}::test_other_apps_cannot_see_or_cancel",),
    ),
    Mutation(
        name="isolation_everyone_admin",
        rule="every token reads every application's jobs",
        path="jobs/selectors/jobs.py",
        search="return None if app.is_admin else app.id",
        replace="return None",
        tests=(f"{SCOPES}::test_another_applications_job_is_still_404_for_a_non_admin",),
    ),
    Mutation(
        name="idempotency_key_shared_between_apps",
        rule="one application's Idempotency-Key replays another application's job",
        path="jobs/sql/jobs_read.sql",
        search="SELECT * FROM jobs_job WHERE app_id = %(app_id)s AND idempotency_key = %(idempotency_key)s;",
        replace="SELECT * FROM jobs_job WHERE idempotency_key = %(idempotency_key)s;",
        tests=("tests/integration/test_idempotency.py::test_keys_belong_to_one_application",),
    ),
    # -- idempotency ----------------------------------------------------------------------
    Mutation(
        name="idempotency_index_not_unique",
        rule="two concurrent creates with one Idempotency-Key make two jobs",
        path="jobs/migrations/sql/0002_idempotency_key.sql",
        search="CREATE UNIQUE INDEX jobs_job_idempotency",
        replace="CREATE INDEX jobs_job_idempotency",
        tests=("tests/integration/test_idempotency.py::test_concurrent_duplicate_loses_the_race_gracefully",),
    ),
    # -- the rescuer: no job is lost when its worker dies --------------------------------
    Mutation(
        name="rescue_does_nothing",
        rule="jobs whose lease expired are never rescued",
        path="jobs/services/recovery.py",
        search='expired = db.fetch_all("job_find_expired", limit=limit)',
        replace="expired = []",
        tests=(f"{MAINTENANCE}::test_expired_lease_is_requeued_with_a_new_envelope",),
    ),
    Mutation(
        name="rescue_without_envelope",
        rule="a rescued job is requeued without a delivery, so it never runs",
        path="jobs/sql/jobs_write.sql",
        search=(
            "AND lease_expires_at < now()\n    RETURNING *\n), /* include _envelope_insert */, events AS (\n"
            "    INSERT INTO jobs_event (job_id, kind, attempt, data)\n    SELECT id, 'rescued'"
        ),
        replace=(
            "AND lease_expires_at < now()\n    RETURNING *\n), events AS (\n"
            "    INSERT INTO jobs_event (job_id, kind, attempt, data)\n    SELECT id, 'rescued'"
        ),
        tests=(f"{MAINTENANCE}::test_expired_lease_is_requeued_with_a_new_envelope",),
    ),
    Mutation(
        name="rescue_spent_attempts_requeued",
        rule="a job whose last attempt was lost is run once more",
        path="jobs/services/recovery.py",
        search="elif attempt >= attempts_allowed:",
        replace="elif attempt > attempts_allowed:",
        tests=(f"{MAINTENANCE}::test_expired_lease_with_attempts_spent_fails",),
    ),
    Mutation(
        name="rescue_ignores_cancel",
        rule="a job being cancelled when its worker died is run again",
        path="jobs/services/recovery.py",
        search='if row["cancel_requested"]:',
        replace="if False:",
        tests=(f"{MAINTENANCE}::test_expired_lease_while_cancelling_ends_cancelled",),
    ),
    Mutation(
        name="maintenance_skips_rescue",
        rule="the maintenance pass never runs the rescuer",
        path="jobs/runtime/maintenance/__init__.py",
        search="SERVICES = (rescue, ",
        replace="SERVICES = (",
        tests=(f"{MAINTENANCE}::test_one_maintenance_pass_rescues_redelivers_and_promotes",),
    ),
    # -- completion callbacks: the outbox -------------------------------------------------
    Mutation(
        name="callback_outbox_not_written",
        rule="a job that ends never queues its callback",
        path="jobs/sql/jobs_write.sql",
        search="    WHERE job.callback_url IS NOT NULL AND job.status IN ('succeeded', 'failed', 'cancelled')\n",
        replace="    WHERE false\n",
        tests=(f"{CALLBACKS}::test_the_finish_writes_the_callback_and_the_delivery_is_signed",),
    ),
    Mutation(
        name="callback_not_on_cancel",
        rule="cancelling a waiting job queues no callback",
        path="jobs/sql/jobs_write.sql",
        search=(
            "), /* include _cancel_update */, /* include _cancel_events */, /* include _callback_insert */\n"
            "SELECT * FROM job;\n\n-- job_find_expired --"
        ),
        replace=(
            "), /* include _cancel_update */, /* include _cancel_events */\n"
            "SELECT * FROM job;\n\n-- job_find_expired --"
        ),
        tests=(f"{CALLBACKS}::test_cancelling_a_waiting_job_calls_back_too",),
    ),
    Mutation(
        name="callback_not_on_rescue_fail",
        rule="a job failed by the rescuer queues no callback",
        path="jobs/sql/jobs_write.sql",
        search="'rescued', true)\n    FROM job\n), /* include _callback_insert */",
        replace="'rescued', true)\n    FROM job\n)",
        tests=(f"{CALLBACKS}::test_a_job_whose_worker_died_on_its_last_attempt_calls_back",),
    ),
    Mutation(
        name="callback_redirect_counts_as_delivered",
        rule="a 3xx answer marks a callback delivered",
        path="jobs/runtime/callbacks.py",
        search="if status is not None and 200 <= status < 300:",
        replace="if status is not None and 200 <= status < 400:",
        tests=(f"{CALLBACKS}::test_a_redirect_is_not_followed",),
    ),
    Mutation(
        name="callback_host_not_rechecked",
        rule="a callback is POSTed to a host no longer allowed",
        path="jobs/runtime/callbacks.py",
        search='if outbox.url_problem(callback["url"]) is not None:',
        replace="if False:",
        tests=(f"{CALLBACKS}::test_a_host_removed_from_the_allowed_list_gets_no_callback",),
    ),
    Mutation(
        name="callbacks_taken_two_at_a_time",
        rule="a deliverer takes two due callbacks for one attempt (and jams on them)",
        path="jobs/runtime/callbacks.py",
        search="taken = outbox.callbacks_take(limit=1, lease=lease())",
        replace="taken = outbox.callbacks_take(limit=2, lease=lease())",
        tests=(f"{CALLBACKS}::test_every_due_callback_gets_its_attempt_in_one_pass",),
    ),
    Mutation(
        name="callback_signature_accepts_replays",
        rule="a receiver's verify() accepts a signature older than its tolerance",
        path="jobs/services/callbacks.py",
        search="> tolerance:\n        return False",
        replace="> tolerance:\n        return True",
        tests=("tests/unit/test_callbacks.py::test_an_old_or_future_timestamp_does_not_verify_replays",),
    ),
    # -- fairness: caps on running and unfinished jobs ------------------------------------
    Mutation(
        name="running_cap_ignored",
        rule="an application runs more jobs than its cap",
        path="jobs/sql/jobs_write.sql",
        search="      AND jobs_app_has_room(app_id, %(max_running)s)\n",
        replace="      AND true\n",
        tests=(f"{FAIRNESS}::test_a_claim_beyond_the_running_cap_is_deferred_and_others_run",),
    ),
    Mutation(
        name="running_cap_off_by_one",
        rule="an application runs one job more than its cap",
        path="jobs/migrations/sql/0004_fairness.sql",
        search="WHERE app_id = app AND status = 'running') < cap;",
        replace="WHERE app_id = app AND status = 'running') <= cap;",
        tests=(f"{FAIRNESS}::test_a_claim_beyond_the_running_cap_is_deferred_and_others_run",),
    ),
    Mutation(
        name="running_cap_race",
        rule="concurrent claims exceed an application's running cap",
        path="jobs/migrations/sql/0004_fairness.sql",
        search="    PERFORM pg_advisory_xact_lock(hashtextextended('jobs_app_running:' || app::text, 0));\n",
        replace="",
        tests=(
            f"{FAIRNESS}::test_a_claim_waits_for_a_claim_in_flight_of_the_same_application",
            f"{FAIRNESS}::test_concurrent_claims_never_exceed_the_cap",
        ),
    ),
    Mutation(
        name="unfinished_cap_off_by_one",
        rule="an application keeps one unfinished job more than its cap",
        path="jobs/migrations/sql/0021_exact_unfinished_cap.sql",
        search="+ adding <= cap;",
        replace="+ adding <= cap + 1;",
        tests=(f"{FAIRNESS}::test_a_create_beyond_the_unfinished_cap_is_429_and_stores_nothing",),
    ),
    Mutation(
        name="unfinished_cap_race",
        rule="concurrent creates exceed an application's cap of unfinished jobs",
        path="jobs/migrations/sql/0021_exact_unfinished_cap.sql",
        search="    PERFORM pg_advisory_xact_lock(hashtextextended('jobs_app_unfinished:' || app::text, 0));\n",
        replace="",
        tests=(f"{FAIRNESS}::test_a_create_waits_for_a_create_in_flight_at_the_unfinished_cap",),
    ),
    Mutation(
        name="batch_cancel_race",
        rule="two cancels of a batch racing both record the cancel",
        path="jobs/services/batches.py",
        search='        db.fetch_one("batch_cancel_lock", id=batch_id)\n',
        replace="",
        tests=(f"{FAIRNESS}::test_two_cancels_of_a_batch_racing_record_its_cancel_once",),
    ),
    Mutation(
        name="history_out_of_order",
        rule="a re-run's entry in a finished job's history can commit before one with a lower id",
        path="jobs/services/lifecycle.py",
        search='            db.fetch_one("job_lock_history", id=origin.rerun_of)\n',
        replace="            pass\n",
        tests=("tests/integration/test_rerun.py::test_entries_added_to_a_finished_jobs_history_commit_in_id_order",),
    ),
    Mutation(
        name="schedules_cap_race",
        rule="concurrent schedule creates exceed an application's cap of schedules",
        path="jobs/services/schedules.py",
        search='            db.fetch_one("schedule_lock_app", app_id=app.id)\n',
        replace="            pass\n",
        tests=(f"{FAIRNESS}::test_a_schedule_create_waits_for_one_in_flight_at_the_schedules_cap",),
    ),
    # -- scopes ---------------------------------------------------------------------------
    Mutation(
        name="scope_never_checked",
        rule="a token without the scope a view needs is let through",
        path="jobs/api/permissions.py",
        search="        if self.scope not in app.scopes:\n",
        replace="        if False:\n",
        tests=(f"{SCOPES}::test_read_only_token_reads_and_cannot_create_or_cancel",),
    ),
    Mutation(
        name="scope_write_not_required",
        rule="a read-only token creates and cancels jobs",
        path="jobs/api/permissions.py",
        search="        return request.method not in SAFE_METHODS\n",
        replace="        return False\n",
        tests=(f"{SCOPES}::test_read_only_token_reads_and_cannot_create_or_cancel",),
    ),
    Mutation(
        name="scope_read_not_required",
        rule="a write-only token reads jobs",
        path="jobs/api/permissions.py",
        search="        return request.method in SAFE_METHODS\n",
        replace="        return False\n",
        tests=(f"{SCOPES}::test_write_only_token_creates_and_cancels_and_cannot_read",),
    ),
    Mutation(
        name="scope_admin_app_filter_open",
        rule="a non-admin token may ask for another application's list",
        path="jobs/api/permissions.py",
        search='        return request.method in SAFE_METHODS and "app" in request.query_params\n',
        replace="        return False\n",
        tests=(f"{SCOPES}::test_app_filter_is_403_for_a_non_admin",),
    ),
    Mutation(
        name="scope_metrics_open",
        rule="any token reads /metrics from anywhere",
        path="jobs/api/metrics.py",
        search='if request.user is not None and "admin" in getattr(request.user, "scopes", ()):',
        replace="if request.user is not None:",
        tests=("tests/integration/test_metrics.py::test_a_token_without_the_admin_scope_gets_403",),
    ),
    Mutation(
        name="scope_dashboard_open",
        rule="any logged-in token opens the dashboard",
        path="jobs/dashboard/access.py",
        search='    return "admin" in getattr(app, "scopes", ())',
        replace="    return True",
        tests=("tests/integration/test_dashboard.py::test_a_token_without_the_admin_scope_gets_403",),
    ),
    # -- what this platform added since: checkpoints, logs, batches, schedules ----------------
    Mutation(
        name="fence_checkpoint",
        rule="a stale attempt's checkpoint lands on the new attempt",
        path="jobs/sql/checkpoints.sql",
        search="AND attempts = %(attempt)s",
        replace="AND attempts >= %(attempt)s",
        tests=("tests/integration/test_checkpoints.py::test_a_stale_attempts_checkpoint_raises_and_changes_nothing",),
    ),
    Mutation(
        name="fence_log_append",
        rule="a stale attempt's log lines are written",
        path="jobs/sql/logs.sql",
        search="AND attempts = %(attempt)s",
        replace="AND attempts >= %(attempt)s",
        tests=("tests/integration/test_job_logs.py::test_a_stale_attempts_lines_are_refused_and_nothing_is_written",),
    ),
    Mutation(
        name="batch_countdown_ignores_concurrent_ends",
        rule="two jobs ending at once both read the old count: the batch never finishes",
        path="jobs/sql/batches.sql",
        search="    SET unfinished = b.unfinished - ended.jobs,",
        replace="    SET unfinished = greatest(b.unfinished - ended.jobs, 1),",
        tests=(
            "tests/integration/test_batches.py::test_the_last_job_to_end_finishes_the_batch_and_queues_its_callback_once",
        ),
    ),
    Mutation(
        name="schedule_fire_not_unique",
        rule="a second job for one (schedule, fire time) is accepted",
        path="jobs/migrations/0020_indexes_and_checks.py",
        search='"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_schedule_fire "',
        replace='"CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_schedule_fire "',
        tests=(
            "tests/integration/test_schedules.py::test_the_unique_index_refuses_a_second_job_for_a_fire_time_even_if_code_tried",
        ),
    ),
)
