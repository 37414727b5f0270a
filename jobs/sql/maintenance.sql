-- job_find_expired --
-- Running jobs whose lease ran out (their worker died or hung), locked for rescue.
SELECT id, attempts, max_attempts, timeout_seconds, worker,
       cancel_requested_at IS NOT NULL AS cancel_requested
FROM jobs_job
WHERE status = 'running' AND lease_expires_at < now()
ORDER BY lease_expires_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- job_rescue_requeue --
-- Put an abandoned attempt's job back in the queue with a new envelope.
WITH new_envelope AS (
    SELECT nextval(pg_get_serial_sequence('django_q_ormq', 'id')) AS id
), job AS (
    UPDATE jobs_job
    SET status = 'queued',
        lease_expires_at = NULL,
        error = %(error)s::jsonb,
        envelope_id = (SELECT id FROM new_envelope),
        enqueued_at = now(),
        updated_at = now()
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s AND lease_expires_at < now()
    RETURNING *
), envelope AS (
    INSERT INTO django_q_ormq (id, key, payload, lock)
    SELECT job.envelope_id, %(envelope_key)s, %(envelope_payload)s,
           now() + make_interval(secs => %(envelope_delay)s)
    FROM job
), events AS (
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
)
SELECT * FROM job;

-- job_find_undelivered --
-- Waiting jobs whose delivery is lost: the envelope vanished, or a cluster took it
-- more than %(after)s seconds ago and never started the job (it died, or is stuck).
SELECT j.id, j.attempts, j.timeout_seconds, j.envelope_id
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
WITH new_envelope AS (
    SELECT nextval(pg_get_serial_sequence('django_q_ormq', 'id')) AS id
), job AS (
    UPDATE jobs_job
    SET envelope_id = (SELECT id FROM new_envelope), enqueued_at = now()
    WHERE id = %(id)s AND status IN ('queued', 'scheduled')
    RETURNING *
), envelope AS (
    INSERT INTO django_q_ormq (id, key, payload, lock)
    SELECT job.envelope_id, %(envelope_key)s, %(envelope_payload)s,
           now() + make_interval(secs => %(envelope_delay)s)
    FROM job
), events AS (
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
