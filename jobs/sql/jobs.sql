-- The jobs table: every query that reads or changes a job, in lifecycle order.

-- _envelope_insert --
-- Fragment (a CTE), the one place an envelope is written: django-q2's delivery of each
-- job row returned by the CTE "job", under the envelope id that row now holds, visible
-- to clusters at the job's run_at (or at once). Used by create, retry, rescue, redeliver.
envelope AS (
    INSERT INTO django_q_ormq (id, key, payload, lock)
    SELECT job.envelope_id, %(envelope_key)s, %(envelope_payload)s, COALESCE(job.run_at, now()) FROM job
)

-- _callback_insert --
-- Fragment (a CTE), the one place a completion callback is queued: for each job row of
-- the CTE "job" that has just ended and names a callback_url. Used by every terminal
-- transition (finish, cancel, rescue-fail), in the same statement.
callback AS (
    INSERT INTO jobs_callback (job_id, url)
    SELECT job.id, job.callback_url FROM job
    WHERE job.callback_url IS NOT NULL AND job.status IN ('succeeded', 'failed', 'cancelled')
)

-- job_create --
-- Insert a job, its delivery envelope (visible at run_at, or now) and its 'created'
-- and 'queued'/'scheduled' events in one statement (atomic on its own); returns the row,
-- or nothing when the application is at its cap of unfinished jobs.
WITH job AS (
    INSERT INTO jobs_job (id, app_id, type, queue, params, metadata, status, max_attempts,
                          timeout_seconds, run_at, envelope_id, enqueued_at, created_at, updated_at,
                          idempotency_key, request_hash, callback_url)
    SELECT %(id)s, %(app_id)s, %(type)s, %(queue)s, %(params)s::jsonb, %(metadata)s::jsonb,
           CASE WHEN %(run_at)s::timestamptz > now() THEN 'scheduled' ELSE 'queued' END,
           %(max_attempts)s, %(timeout_seconds)s, %(run_at)s::timestamptz,
           nextval(pg_get_serial_sequence('django_q_ormq', 'id')), now(),
           -- clock time, so jobs created in one transaction still sort in creation order
           clock_timestamp(), clock_timestamp(),
           %(idempotency_key)s, %(request_hash)s, %(callback_url)s
    -- Back-pressure: no row (and no envelope) once the application has max_unfinished
    -- jobs waiting or running; counting stops there (index-only, jobs_job_app_active).
    WHERE %(max_unfinished)s <= 0
       OR (SELECT count(*) FROM (SELECT 1 FROM jobs_job
                                 WHERE app_id = %(app_id)s AND status IN ('scheduled', 'queued', 'running')
                                 LIMIT %(max_unfinished)s) AS unfinished) < %(max_unfinished)s
    RETURNING *
), /* include _envelope_insert */, events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT job.id, e.kind, 0, e.data
    FROM job, LATERAL (VALUES
        (1, 'created', jsonb_build_object('type', job.type)),
        (2, job.status, CASE WHEN job.status = 'scheduled'
                             THEN jsonb_build_object('run_at', job.run_at) ELSE '{}'::jsonb END)
    ) AS e(n, kind, data)
    ORDER BY e.n
)
SELECT * FROM job;

-- job_get --
-- One job of one application (app_id NULL: of any application, for an admin token).
SELECT * FROM jobs_job WHERE id = %(id)s AND (%(app_id)s::uuid IS NULL OR app_id = %(app_id)s);

-- job_get_by_idempotency_key --
-- The job an application created with this Idempotency-Key, if any.
SELECT * FROM jobs_job WHERE app_id = %(app_id)s AND idempotency_key = %(idempotency_key)s;

-- job_list --
-- An application's jobs, newest first, optionally filtered (any of several statuses,
-- comma-separated; created strictly after / before an instant), keyset-paginated; with
-- app_id NULL every application's (or app_name's), for an admin token. The client-side
-- parameters fold the NULL tests away, so the created_at bounds and the cursor are
-- ranges on the index jobs_job_app_created (jobs_job_created for every application) and
-- the rest are filters on its rows.
SELECT * FROM jobs_job
WHERE (%(app_id)s::uuid IS NULL OR app_id = %(app_id)s)
  AND (%(app_name)s::text IS NULL OR app_id = (SELECT id FROM jobs_app WHERE name = %(app_name)s))
  AND (%(statuses)s::text IS NULL OR status = ANY(string_to_array(%(statuses)s::text, ',')))
  AND (%(created_after)s::timestamptz IS NULL OR created_at > %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR created_at < %(created_before)s::timestamptz)
  AND (%(type)s::text IS NULL OR type = %(type)s)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(metadata)s::jsonb IS NULL OR metadata @> %(metadata)s::jsonb)
  AND (%(before_created_at)s::timestamptz IS NULL
       OR (created_at, id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- job_list_all --
-- Every application's jobs with their application's name, newest first, optionally
-- filtered, keyset-paginated (the dashboard; index jobs_job_created).
SELECT j.*, a.name AS app_name
FROM jobs_job j JOIN jobs_app a ON a.id = j.app_id
WHERE (%(statuses)s::text IS NULL OR j.status = ANY(string_to_array(%(statuses)s::text, ',')))
  AND (%(created_after)s::timestamptz IS NULL OR j.created_at > %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR j.created_at < %(created_before)s::timestamptz)
  AND (%(type)s::text IS NULL OR j.type = %(type)s)
  AND (%(queue)s::text IS NULL OR j.queue = %(queue)s)
  AND (%(metadata)s::jsonb IS NULL OR j.metadata @> %(metadata)s::jsonb)
  AND (%(before_created_at)s::timestamptz IS NULL
       OR (j.created_at, j.id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY j.created_at DESC, j.id DESC
LIMIT %(limit)s;

-- job_get_any --
-- One job of any application, with its application's name and its latest event's id
-- (the dashboard's validator: a new event changes it even when the row does not).
SELECT j.*, a.name AS app_name,
       (SELECT max(e.id) FROM jobs_event e WHERE e.job_id = j.id) AS last_event_id
FROM jobs_job j JOIN jobs_app a ON a.id = j.app_id
WHERE j.id = %(id)s;

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

-- job_delivery --
-- What a new envelope for a job needs.
SELECT queue, timeout_seconds FROM jobs_job WHERE id = %(id)s;

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

-- job_cancel --
-- Cancel a queued or scheduled job at once; ask a running one to stop.
-- No row back: unknown (for this app) or already terminal.
WITH job AS (
    UPDATE jobs_job
    SET status = CASE WHEN status = 'running' THEN status ELSE 'cancelled' END,
        cancel_requested_at = COALESCE(cancel_requested_at, now()),
        finished_at = CASE WHEN status = 'running' THEN NULL ELSE now() END,
        updated_at = now()
    WHERE id = %(id)s AND app_id = %(app_id)s
      AND status IN ('scheduled', 'queued', 'running')
    RETURNING *
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, CASE WHEN status = 'cancelled' THEN 'cancelled' ELSE 'cancel_requested' END,
           attempts, '{}'::jsonb
    FROM job
), /* include _callback_insert */
SELECT * FROM job;

-- job_find_expired --
-- Running jobs whose lease ran out (their worker died or hung), locked for rescue.
SELECT id, type, attempts, max_attempts, timeout_seconds, worker, queue,
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

-- stats_by_status_type --
-- Job counts per status and type, for the monitor.
SELECT status, type, count(*) AS jobs FROM jobs_job GROUP BY status, type ORDER BY status, type;

-- stats_oldest_waiting --
-- When the longest-waiting queued (or due scheduled) job entered the queue.
SELECT min(COALESCE(run_at, created_at)) AS since, clock_timestamp() AS now FROM jobs_job
WHERE status = 'queued' OR (status = 'scheduled' AND run_at <= now());

-- stats_latest --
-- The most recently changed jobs of every application, for the monitor.
SELECT j.id, j.type, j.status, j.attempts, j.progress, j.updated_at, a.name AS app_name
FROM jobs_job j JOIN jobs_app a ON a.id = j.app_id
ORDER BY j.updated_at DESC, j.id LIMIT %(limit)s;

-- ===== operator's view (jobs_top, /ready): monitor_* queries ========================
-- Each reads through an index: jobs_job_finished, jobs_job_failed (migration 0007) or
-- jobs_job_active. Kept together so the block can move as one.

-- monitor_finished_recently --
-- Jobs that reached a terminal state within the last %(seconds)s seconds, per status.
SELECT status, count(*) AS jobs FROM jobs_job
WHERE finished_at >= now() - make_interval(secs => %(seconds)s)
GROUP BY status ORDER BY status;

-- monitor_running --
-- Running jobs, longest-running first, with their progress and application.
SELECT j.id, j.type, j.attempts, j.max_attempts, j.worker, j.progress, j.started_at,
       clock_timestamp() AS now, a.name AS app_name
FROM jobs_job j JOIN jobs_app a ON a.id = j.app_id
WHERE j.status = 'running'
ORDER BY j.started_at, j.id LIMIT %(limit)s;

-- monitor_recent_failures --
-- The most recently failed jobs, newest first, with their error.
SELECT j.id, j.type, j.attempts, j.error, j.finished_at, a.name AS app_name
FROM jobs_job j JOIN jobs_app a ON a.id = j.app_id
WHERE j.status = 'failed'
ORDER BY j.finished_at DESC, j.id DESC LIMIT %(limit)s;
-- ===== end of operator's view queries ===============================================

-- metrics_jobs_by_type_status --
-- Jobs per type and status, with their attempts (each attempt is one start), for
-- /metrics. An index-only scan of jobs_job_metrics (migration 0008).
SELECT type, status, count(*) AS jobs, sum(attempts) AS attempts
FROM jobs_job
GROUP BY type, status;

-- metrics_job_durations --
-- Duration histograms per type, for /metrics, in one index-only scan of jobs_job_metrics:
-- "run" is first start to end of a finished job (bounds %(run_bounds)s), "wait" is
-- creation to first start (bounds %(wait_bounds)s). run_k / wait_k is how many of the
-- bounds are >= the duration (width_bucket over the negated bounds, ascending), so the job
-- counts in the k largest buckets: Prometheus' "le", less than or equal.
SELECT type,
       width_bucket(-run, ARRAY(SELECT -b FROM unnest(%(run_bounds)s::float8[]) AS b ORDER BY 1)) AS run_k,
       width_bucket(-wait, ARRAY(SELECT -b FROM unnest(%(wait_bounds)s::float8[]) AS b ORDER BY 1)) AS wait_k,
       count(*) AS jobs, sum(run) AS run_seconds, sum(wait) AS wait_seconds
FROM (
    SELECT type,
           CASE WHEN status IN ('succeeded', 'failed', 'cancelled')
                THEN date_part('epoch', finished_at - started_at) END AS run,
           date_part('epoch', started_at - created_at) AS wait
    FROM jobs_job
    WHERE started_at IS NOT NULL
) AS d
GROUP BY type, run_k, wait_k;

-- metrics_oldest_waiting --
-- Per queue, how long its longest-waiting queued (or due scheduled) job has waited.
SELECT queue, extract(epoch FROM clock_timestamp() - min(COALESCE(run_at, created_at))) AS seconds
FROM jobs_job
WHERE status = 'queued' OR (status = 'scheduled' AND run_at <= now())
GROUP BY queue;

-- stats_throughput --
-- Jobs created, and jobs finished per terminal status, within the last %(seconds)s seconds.
WITH since AS (SELECT now() - make_interval(secs => %(seconds)s) AS at)
SELECT count(*) FILTER (WHERE j.created_at >= since.at) AS created,
       count(*) FILTER (WHERE j.status = 'succeeded' AND j.finished_at >= since.at) AS succeeded,
       count(*) FILTER (WHERE j.status = 'failed' AND j.finished_at >= since.at) AS failed,
       count(*) FILTER (WHERE j.status = 'cancelled' AND j.finished_at >= since.at) AS cancelled
FROM jobs_job j, since
WHERE j.created_at >= since.at OR j.finished_at >= since.at;
