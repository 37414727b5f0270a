-- Changes to jobs: every state change of a job, in lifecycle order (jobs.services.lifecycle
-- and jobs.services.recovery). Each is one statement that also appends the job's history
-- (jobs_event) and, when the job needs a delivery or a callback, writes its envelope or
-- its outbox row, so they commit together.

-- _envelope_insert --
-- Fragment (a CTE), the one place an envelope is written: django-q2's delivery of each
-- job row returned by the CTE "job", under the envelope id that row now holds, visible
-- to clusters at the job's run_at (or at once). Used by create, retry, rescue, redeliver.
envelope AS (
    INSERT INTO django_q_ormq (id, key, payload, lock)
    SELECT job.envelope_id, %(envelope_key)s, %(envelope_payload)s, COALESCE(job.run_at, now()) FROM job
)

-- _callback_insert --
-- Fragment (CTEs), the one place a completion callback is queued: for each job row of
-- the CTE "job" that has just ended and names a callback_url. Used by every terminal
-- transition (finish, cancel, rescue-fail), in the same statement; it also counts the
-- ended jobs of a batch down (_batch_job_ended, jobs/sql/batches.sql).
callback AS (
    INSERT INTO jobs_callback (job_id, url)
    SELECT job.id, job.callback_url FROM job
    WHERE job.callback_url IS NOT NULL AND job.status IN ('succeeded', 'failed', 'cancelled')
), /* include _batch_job_ended */


-- _created_events --
-- Fragment (a CTE): the 'created' and 'queued'/'scheduled' events of each new job of the
-- CTE "job", 'created' first (with the schedule and fire time of a schedule's job, the job a
-- re-run re-runs and whether it resumed from its checkpoint). Used by job_create and batch_create.
events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT job.id, e.kind, 0, e.data
    FROM job, LATERAL (VALUES
        (1, 'created', jsonb_strip_nulls(jsonb_build_object(
            'type', job.type, 'schedule_id', job.schedule_id, 'fire_time', job.fire_time,
            'rerun_of', job.rerun_of,
            'resumed', CASE WHEN job.rerun_of IS NOT NULL THEN job.checkpoint_at IS NOT NULL END))),
        (2, job.status, CASE WHEN job.status = 'scheduled'
                             THEN jsonb_build_object('run_at', job.run_at) ELSE '{}'::jsonb END)
    ) AS e(n, kind, data)
    ORDER BY e.n
)

-- job_create --
-- Insert a job, its delivery envelope (visible at run_at, or now) and its 'created'
-- and 'queued'/'scheduled' events in one statement (atomic on its own); returns the row,
-- or nothing when the application is at its cap of unfinished jobs. A schedule's fire
-- names the schedule and the fire time (jobs_job_schedule_fire: one job per pair). A re-run
-- (rerun_of set) may start from a checkpoint, and adds a 'rerun' event to the job it re-runs.
WITH job AS (
    INSERT INTO jobs_job (id, app_id, type, queue, params, metadata, status, max_attempts,
                          timeout_seconds, run_at, envelope_id, enqueued_at, created_at, updated_at,
                          idempotency_key, request_hash, callback_url, schedule_id, fire_time,
                          rerun_of, checkpoint, checkpoint_at)
    SELECT %(id)s, %(app_id)s, %(type)s, %(queue)s, %(params)s::jsonb, %(metadata)s::jsonb,
           CASE WHEN %(run_at)s::timestamptz > now() THEN 'scheduled' ELSE 'queued' END,
           %(max_attempts)s, %(timeout_seconds)s, %(run_at)s::timestamptz,
           nextval(pg_get_serial_sequence('django_q_ormq', 'id')), now(),
           -- clock time, so jobs created in one transaction still sort in creation order
           clock_timestamp(), clock_timestamp(),
           %(idempotency_key)s, %(request_hash)s, %(callback_url)s,
           %(schedule_id)s::uuid, %(fire_time)s::timestamptz,
           %(rerun_of)s::uuid, %(checkpoint)s::jsonb, %(checkpoint_at)s::timestamptz
    -- Back-pressure: no row (and no envelope) once the application has max_unfinished
    -- jobs waiting or running; exact when creates race (migration 0021's advisory lock).
    WHERE %(max_unfinished)s <= 0 OR jobs_app_unfinished_room(%(app_id)s, %(max_unfinished)s, 1)
    RETURNING *
), /* include _envelope_insert */, /* include _created_events */, rerun AS (
    -- the new job's id in the history of the job it re-runs (whose row is left as it is)
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT old.id, 'rerun', old.attempts, jsonb_build_object('job', job.id, 'resumed', job.checkpoint_at IS NOT NULL)
    FROM job JOIN jobs_job old ON old.id = job.rerun_of
)
SELECT * FROM job;

-- job_lock_history --
-- Lock a finished job's row (which never changes) until the transaction ends, before an
-- entry is added to its history from outside its run (a re-run's 'rerun'; a callback's
-- delivery does the same in _callback_recorded): such entries then take their ids in the
-- order they commit, so a reader following the history with after= misses none.
SELECT id FROM jobs_job WHERE id = %(id)s FOR NO KEY UPDATE;

-- job_claim --
-- Start an attempt: only a queued (or due scheduled) job can be claimed; the
-- attempt number fences every later write of this run. A durable commit: a claim lost
-- in a database crash would let a second run claim the same attempt number while the
-- first still runs, and the fence could not tell them apart.
WITH job AS (
    UPDATE jobs_job
    SET status = 'running',
        attempts = attempts + 1,
        started_at = COALESCE(started_at, now()),
        lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),
        worker = %(worker)s,
        run_at = NULL,
        updated_at = now()
    WHERE id = %(id)s
      AND (status = 'queued' OR (status = 'scheduled' AND run_at <= now()))
      -- fairness: not while the application already runs its cap of jobs
      AND jobs_app_has_room(app_id, %(max_running)s)
    RETURNING *
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, 'started', attempts, jsonb_build_object('worker', worker) FROM job
)
SELECT * FROM job;

-- job_defer --
-- After a refused claim, a job that is still waiting and due was refused only because its
-- application ran its cap of jobs (a slot may have freed since: no matter). It gets a new
-- envelope, visible after %(delay)s seconds: its delivery was spent on the refusal, and
-- other applications' jobs run meanwhile. No event: nothing about the job changed.
WITH job AS (
    UPDATE jobs_job
    SET envelope_id = nextval(pg_get_serial_sequence('django_q_ormq', 'id')), enqueued_at = now()
    WHERE id = %(id)s
      AND (status = 'queued' OR (status = 'scheduled' AND run_at <= now()))
    -- the envelope's visibility (the fragment reads run_at); the job's own run_at is unchanged
    RETURNING id, envelope_id, now() + make_interval(secs => %(delay)s) AS run_at
), /* include _envelope_insert */
SELECT id FROM job;

-- job_heartbeat --
-- Extend the lease of a running attempt; no row back means the run is stale. Not
-- waiting for the disk: a lost lease extension at worst gets the job rescued and rerun.
UPDATE jobs_job
SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)
WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
RETURNING cancel_requested_at IS NOT NULL AS cancel_requested,
          set_config('synchronous_commit', 'off', true) AS commit_mode;

-- job_progress --
-- Record progress of a running attempt (and a history event at milestones); not
-- waiting for the disk, like the heartbeat.
WITH job AS (
    UPDATE jobs_job
    SET progress = %(progress)s::jsonb,
        lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),
        updated_at = now()
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
    RETURNING id, attempts, cancel_requested_at
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, 'progress', attempts, %(progress)s::jsonb FROM job WHERE %(milestone)s
)
SELECT cancel_requested_at IS NOT NULL AS cancel_requested,
       set_config('synchronous_commit', 'off', true) AS commit_mode
FROM job;

-- job_finish --
-- End a running attempt for good: 'succeeded' with its result, 'failed' with its
-- error, or 'cancelled' (it stopped because cancellation was asked).
WITH job AS (
    UPDATE jobs_job
    SET status = %(status)s,
        result = CASE WHEN %(status)s = 'succeeded' THEN %(result)s::jsonb END,
        error = CASE %(status)s WHEN 'succeeded' THEN NULL WHEN 'failed' THEN %(error)s::jsonb ELSE error END,
        progress = CASE WHEN %(status)s = 'succeeded'
                        THEN jsonb_build_object('percent', 100.0, 'message', 'finished') ELSE progress END,
        lease_expires_at = NULL,
        finished_at = now(),
        updated_at = now()
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
    RETURNING *
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, status, attempts, CASE WHEN status = 'failed' THEN error ELSE '{}'::jsonb END FROM job
), /* include _callback_insert */
SELECT * FROM job;

-- job_retry --
-- End a running attempt that failed with a retryable error: scheduled again after
-- a backoff, with its new delivery envelope, invisible until then.
WITH job AS (
    UPDATE jobs_job
    SET status = 'scheduled',
        error = %(error)s::jsonb,
        run_at = now() + make_interval(secs => %(delay)s),
        lease_expires_at = NULL,
        envelope_id = nextval(pg_get_serial_sequence('django_q_ormq', 'id')),
        enqueued_at = now(),
        updated_at = now()
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
      -- a job whose application asked it to stop is not tried again (see job_fail)
      AND cancel_requested_at IS NULL
    RETURNING *
), /* include _envelope_insert */, events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, 'retried', attempts,
           jsonb_build_object('error', %(error)s::jsonb, 'delay', %(delay)s, 'run_at', run_at)
    FROM job
)
SELECT * FROM job;

-- _cancel_set --
-- Fragment (the SET of an UPDATE of jobs_job): the application's cancel. A waiting job is
-- cancelled at once; a running one is asked to stop (its run ends it, or its rescue).
SET status = CASE WHEN status = 'running' THEN status ELSE 'cancelled' END,
    cancel_requested_at = COALESCE(cancel_requested_at, now()),
    finished_at = CASE WHEN status = 'running' THEN NULL ELSE now() END,
    updated_at = now()

-- _cancel_update --
-- Fragment (a CTE): the application's cancel of each job of the CTE "target" (its id,
-- locked) still waiting or running, returned as the CTE "job".
job AS (
    UPDATE jobs_job j
    /* include _cancel_set */
    FROM target
    WHERE j.id = target.id AND j.status IN ('scheduled', 'queued', 'running')
    RETURNING j.*
)

-- _cancel_events --
-- Fragment (a CTE): each job of the CTE "job" the application's cancel changed, in its
-- history: 'cancelled', or 'cancel_requested' while it runs, once (the CTE "target", which
-- locked the jobs first, says whether it was asked before: a repeat adds nothing).
events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT job.id, CASE WHEN job.status = 'cancelled' THEN 'cancelled' ELSE 'cancel_requested' END,
           job.attempts, '{}'::jsonb
    FROM job JOIN target ON target.id = job.id
    WHERE job.status = 'cancelled' OR NOT target.asked
)

-- job_cancel --
-- Cancel a queued or scheduled job at once; ask a running one to stop.
-- No row back: unknown (for this app) or already terminal.
WITH target AS (
    SELECT id, cancel_requested_at IS NOT NULL AS asked FROM jobs_job
    WHERE id = %(id)s AND app_id = %(app_id)s AND status IN ('scheduled', 'queued', 'running')
    FOR UPDATE
), /* include _cancel_update */, /* include _cancel_events */, /* include _callback_insert */
SELECT * FROM job;

-- job_find_expired --
-- Running jobs whose lease ran out (their worker died or hung), locked for rescue.
SELECT id, type, attempts, max_attempts, timeout_seconds, worker, queue, batch_id,
       cancel_requested_at IS NOT NULL AS cancel_requested
FROM jobs_job
WHERE status = 'running' AND lease_expires_at < now()
ORDER BY lease_expires_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- job_rescue_requeue --
-- Put an abandoned attempt's job back in the queue with a new envelope.
WITH job AS (
    UPDATE jobs_job
    SET status = 'queued',
        lease_expires_at = NULL,
        error = %(error)s::jsonb,
        envelope_id = nextval(pg_get_serial_sequence('django_q_ormq', 'id')),
        enqueued_at = now(),
        updated_at = now()
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s AND lease_expires_at < now()
    RETURNING *
), /* include _envelope_insert */, events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, 'rescued', attempts, jsonb_build_object('error', %(error)s::jsonb, 'worker', %(worker)s::text)
    FROM job
)
SELECT * FROM job;

-- job_rescue_fail --
-- End an abandoned attempt for good: its attempts are spent (or it was being cancelled).
WITH job AS (
    UPDATE jobs_job
    SET status = %(status)s,
        lease_expires_at = NULL,
        error = CASE WHEN %(status)s = 'failed' THEN %(error)s::jsonb ELSE error END,
        finished_at = now(),
        updated_at = now()
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s AND lease_expires_at < now()
    RETURNING *
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, status, attempts,
           jsonb_build_object('error', %(error)s::jsonb, 'worker', %(worker)s::text, 'rescued', true)
    FROM job
), /* include _callback_insert */
SELECT * FROM job;

-- job_find_undelivered --
-- Waiting jobs whose delivery is lost: the envelope vanished, or a cluster took it
-- more than %(after)s seconds ago and never started the job (it died, or is stuck).
SELECT j.id, j.attempts, j.timeout_seconds, j.envelope_id, j.queue
FROM jobs_job j
WHERE (j.status = 'queued' OR (j.status = 'scheduled' AND j.run_at <= now()))
  AND j.enqueued_at < now() - make_interval(secs => %(after)s)
  AND NOT EXISTS (
      SELECT 1 FROM django_q_ormq q
      WHERE q.id = j.envelope_id
        AND (q.lock <= now()
             OR q.lock - make_interval(secs => %(retry)s) > now() - make_interval(secs => %(after)s))
  )
ORDER BY j.enqueued_at
LIMIT %(limit)s
FOR UPDATE OF j SKIP LOCKED;

-- job_redeliver --
-- Give a waiting job whose delivery was lost a new envelope.
WITH job AS (
    UPDATE jobs_job
    SET envelope_id = nextval(pg_get_serial_sequence('django_q_ormq', 'id')), enqueued_at = now()
    WHERE id = %(id)s AND status IN ('queued', 'scheduled')
    RETURNING *
), /* include _envelope_insert */, events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, 'redelivered', attempts, jsonb_build_object('previous_envelope', %(previous)s::bigint) FROM job
)
SELECT * FROM job;

-- job_promote_due --
-- Scheduled jobs whose time has come are queued (their envelope is already visible).
WITH due AS (
    SELECT id FROM jobs_job
    WHERE status = 'scheduled' AND run_at <= now()
    ORDER BY run_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), job AS (
    UPDATE jobs_job j SET status = 'queued', updated_at = now()
    FROM due WHERE j.id = due.id
    RETURNING j.id, j.attempts
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, 'queued', attempts, '{}'::jsonb FROM job
)
SELECT count(*) AS promoted FROM job;
