-- job_create --
-- Insert a job, its delivery envelope and its 'created' and 'queued'/'scheduled'
-- events in one statement (atomic on its own); returns the row.
WITH envelope AS (
    INSERT INTO django_q_ormq (key, payload, lock)
    VALUES (%(envelope_key)s, %(envelope_payload)s, now() + make_interval(secs => %(envelope_delay)s))
    RETURNING id
), job AS (
    INSERT INTO jobs_job (id, app_id, type, params, metadata, status, max_attempts,
                          timeout_seconds, run_at, envelope_id, enqueued_at, created_at, updated_at,
                          idempotency_key, request_hash)
    VALUES (%(id)s, %(app_id)s, %(type)s, %(params)s::jsonb, %(metadata)s::jsonb,
            CASE WHEN %(envelope_delay)s > 0 THEN 'scheduled' ELSE 'queued' END,
            %(max_attempts)s, %(timeout_seconds)s,
            CASE WHEN %(envelope_delay)s > 0 THEN now() + make_interval(secs => %(envelope_delay)s) END,
            (SELECT id FROM envelope), now(),
            -- clock time, so jobs created in one transaction still sort in creation order
            clock_timestamp(), clock_timestamp(),
            %(idempotency_key)s, %(request_hash)s)
    RETURNING *
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT job.id, e.kind, 0, e.data
    FROM job, LATERAL (VALUES
        (1, 'created', jsonb_build_object('type', job.type)),
        (2, job.status, jsonb_strip_nulls(jsonb_build_object('run_at', job.run_at)))
    ) AS e(n, kind, data)
    ORDER BY e.n
)
SELECT * FROM job;

-- job_get --
-- One job of one application.
SELECT * FROM jobs_job WHERE id = %(id)s AND app_id = %(app_id)s;

-- job_get_by_idempotency_key --
-- The job an application created with this Idempotency-Key, if any.
SELECT * FROM jobs_job WHERE app_id = %(app_id)s AND idempotency_key = %(idempotency_key)s;

-- job_list --
-- An application's jobs, newest first, optionally filtered, keyset-paginated.
SELECT * FROM jobs_job
WHERE app_id = %(app_id)s
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(type)s::text IS NULL OR type = %(type)s)
  AND (%(metadata)s::jsonb IS NULL OR metadata @> %(metadata)s::jsonb)
  AND (%(before_created_at)s::timestamptz IS NULL
       OR (created_at, id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- job_events --
-- A job's history, oldest first (the job must belong to the application).
SELECT e.id, e.at, e.kind, e.attempt, e.data
FROM jobs_event e
JOIN jobs_job j ON j.id = e.job_id
WHERE e.job_id = %(id)s AND j.app_id = %(app_id)s
ORDER BY e.id;

-- job_claim --
-- Start an attempt: only a queued (or due scheduled) job can be claimed; the
-- attempt number fences every later write of this run.
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
    RETURNING *
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, 'started', attempts, jsonb_build_object('worker', worker) FROM job
)
SELECT * FROM job;

-- job_heartbeat --
-- Extend the lease of a running attempt; no row back means the run is stale.
UPDATE jobs_job
SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)
WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
RETURNING cancel_requested_at IS NOT NULL AS cancel_requested;

-- job_progress --
-- Record progress of a running attempt (and a history event at milestones).
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
SELECT cancel_requested_at IS NOT NULL AS cancel_requested FROM job;

-- job_succeed --
-- Finish a running attempt with its result.
WITH job AS (
    UPDATE jobs_job
    SET status = 'succeeded',
        result = %(result)s::jsonb,
        error = NULL,
        progress = jsonb_build_object('percent', 100.0, 'message', 'finished'),
        lease_expires_at = NULL,
        finished_at = now(),
        updated_at = now()
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
    RETURNING *
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, 'succeeded', attempts, '{}'::jsonb FROM job
)
SELECT * FROM job;

-- job_fail --
-- End a running attempt as failed for good.
WITH job AS (
    UPDATE jobs_job
    SET status = 'failed',
        error = %(error)s::jsonb,
        lease_expires_at = NULL,
        finished_at = now(),
        updated_at = now()
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
    RETURNING *
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, 'failed', attempts, %(error)s::jsonb FROM job
)
SELECT * FROM job;

-- job_cancelled --
-- End a running attempt that stopped because cancellation was asked.
WITH job AS (
    UPDATE jobs_job
    SET status = 'cancelled',
        lease_expires_at = NULL,
        finished_at = now(),
        updated_at = now()
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
    RETURNING *
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, 'cancelled', attempts, '{}'::jsonb FROM job
)
SELECT * FROM job;

-- job_retry --
-- End a running attempt that failed with a retryable error: scheduled again after
-- a backoff, with its new delivery envelope, invisible until then.
WITH new_envelope AS (
    SELECT nextval(pg_get_serial_sequence('django_q_ormq', 'id')) AS id
), job AS (
    UPDATE jobs_job
    SET status = 'scheduled',
        error = %(error)s::jsonb,
        run_at = now() + make_interval(secs => %(envelope_delay)s),
        lease_expires_at = NULL,
        envelope_id = (SELECT id FROM new_envelope),
        enqueued_at = now(),
        updated_at = now()
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
    RETURNING *
), envelope AS (
    INSERT INTO django_q_ormq (id, key, payload, lock)
    SELECT job.envelope_id, %(envelope_key)s, %(envelope_payload)s, job.run_at FROM job
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, 'retried', attempts,
           jsonb_build_object('error', %(error)s::jsonb, 'delay', %(envelope_delay)s, 'run_at', run_at)
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
)
SELECT * FROM job;

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
-- Each reads through an index: jobs_job_finished, jobs_job_failed (migration 0004) or
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
