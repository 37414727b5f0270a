-- Batches (jobs.services.batches, jobs.selectors.batches): many jobs created in one
-- statement and followed as one. A batch's jobs are ordinary jobs (jobs_job.batch_id):
-- claimed, run, retried and rescued by the queries of jobs_write.sql like any other.

-- _batch_job_ended --
-- Fragment (CTEs), included by _callback_insert, so by every terminal transition of a job:
-- each batch with jobs among the CTE "job" rows that have just ended counts them down. The
-- UPDATE locks the batch row, so jobs of one batch ending at the same moment in several
-- workers take turns, each reading the count the previous one committed: exactly one
-- statement brings it to 0. That one stamps finished_at, records 'finished' in the batch's
-- history and queues the batch's own callback (jobs_callback_batch_once: one per batch).
-- finished_at is the clock when that statement holds the batch row, not its transaction's
-- start (now()): another job of the batch that started ending later may have committed
-- first, and the batch must not seem to end before one of its jobs.
batch AS (
    UPDATE jobs_batch b
    SET unfinished = b.unfinished - ended.jobs,
        finished_at = CASE WHEN b.unfinished = ended.jobs THEN clock_timestamp() END,
        updated_at = now()
    FROM (SELECT job.batch_id, count(*)::int AS jobs FROM job
          WHERE job.batch_id IS NOT NULL AND job.status IN ('succeeded', 'failed', 'cancelled')
          GROUP BY job.batch_id) AS ended
    WHERE b.id = ended.batch_id
    RETURNING b.id, b.total, b.unfinished, b.callback_url
), batch_callback AS (
    INSERT INTO jobs_callback (batch_id, url)
    SELECT id, callback_url FROM batch WHERE unfinished = 0 AND callback_url IS NOT NULL
    ON CONFLICT (batch_id) WHERE batch_id IS NOT NULL DO NOTHING
), batch_finished AS (
    INSERT INTO jobs_batch_event (batch_id, kind, data)
    SELECT id, 'finished', jsonb_build_object('jobs', total) FROM batch WHERE unfinished = 0
)

-- batch_create --
-- Insert a batch and all its jobs, their delivery envelopes, their 'created' and
-- 'queued'/'scheduled' events and the batch's 'created' event in one statement: all or
-- nothing. %(jobs)s is a JSON array of validated jobs, each with its id and its envelope.
-- No row back (and nothing written) when the batch would take the application past
-- %(max_unfinished)s unfinished jobs.
WITH item AS (
    SELECT * FROM jsonb_to_recordset(%(jobs)s::jsonb) AS item(
        n integer, id uuid, type text, queue text, params jsonb, metadata jsonb, max_attempts integer,
        timeout_seconds integer, run_at timestamptz, callback_url text, envelope_key text, envelope_payload text)
), new_batch AS (
    INSERT INTO jobs_batch (id, app_id, metadata, callback_url, total, unfinished, idempotency_key, request_hash,
                            created_at, updated_at)
    SELECT %(id)s, %(app_id)s, %(metadata)s::jsonb, %(callback_url)s, size.total, size.total,
           %(idempotency_key)s, %(request_hash)s, clock_timestamp(), clock_timestamp()
    FROM (SELECT count(*)::int AS total FROM item) AS size
    -- Back-pressure, as job_create's: the whole batch must fit under the cap.
    WHERE %(max_unfinished)s <= 0 OR jobs_app_unfinished_room(%(app_id)s, %(max_unfinished)s, size.total)
    RETURNING *
), job AS (
    INSERT INTO jobs_job (id, app_id, batch_id, type, queue, params, metadata, status, max_attempts,
                          timeout_seconds, run_at, envelope_id, enqueued_at, created_at, updated_at, callback_url)
    SELECT item.id, new_batch.app_id, new_batch.id, item.type, item.queue, item.params, item.metadata,
           -- (the batch's creation instant: the service logs each job's status by the same rule)
           CASE WHEN item.run_at > new_batch.created_at THEN 'scheduled' ELSE 'queued' END,
           item.max_attempts, item.timeout_seconds, item.run_at,
           nextval(pg_get_serial_sequence('django_q_ormq', 'id')), now(),
           -- clock time, row by row in the order sent: the jobs sort in creation order
           clock_timestamp(), clock_timestamp(), item.callback_url
    FROM new_batch, item
    ORDER BY item.n
    RETURNING id, type, status, run_at, envelope_id, schedule_id, fire_time, rerun_of, checkpoint_at
), envelope AS (
    INSERT INTO django_q_ormq (id, key, payload, lock)
    SELECT job.envelope_id, item.envelope_key, item.envelope_payload, COALESCE(job.run_at, now())
    FROM job JOIN item ON item.id = job.id
), /* include _created_events */, batch_events AS (
    INSERT INTO jobs_batch_event (batch_id, kind, data)
    SELECT id, 'created', jsonb_build_object('jobs', total) FROM new_batch
)
SELECT * FROM new_batch;

-- batch_get_by_idempotency_key --
-- The batch an application created with this Idempotency-Key, if any.
SELECT id, request_hash FROM jobs_batch WHERE app_id = %(app_id)s AND idempotency_key = %(idempotency_key)s;

-- _batch_counts --
-- Fragment (a LATERAL subquery over the batch b): its jobs per status (a JSON object) and
-- their mean progress in percent, where a finished job counts 100 whatever its outcome.
-- Walks the batch's jobs through jobs_job_batch.
SELECT COALESCE(jsonb_object_agg(s.status, s.jobs), '{}'::jsonb) AS counts,
       COALESCE(sum(s.percent) / NULLIF(sum(s.jobs), 0)::float8, 0)::float8 AS percent
FROM (
    SELECT j.status, count(*) AS jobs,
           sum(CASE WHEN j.status IN ('succeeded', 'failed', 'cancelled') THEN 100
                    WHEN jsonb_typeof(j.progress -> 'percent') = 'number'
                    THEN least(greatest((j.progress ->> 'percent')::float8, 0), 100)
                    ELSE 0 END) AS percent
    FROM jobs_job j
    WHERE j.batch_id = b.id
    GROUP BY j.status
) AS s

-- batch_get --
-- One batch with its counts and its application's name, of one application (app_id NULL:
-- of any application, for an admin token, the dashboard or the callback deliverer).
SELECT b.*, a.name AS app_name, c.counts, c.percent
FROM jobs_batch b
JOIN jobs_app a ON a.id = b.app_id,
LATERAL (/* include _batch_counts */) AS c
WHERE b.id = %(id)s AND (%(app_id)s::uuid IS NULL OR b.app_id = %(app_id)s);

-- batch_list --
-- A page of an application's batches, newest first, keyset-paginated on (created_at, id)
-- like the job list, each with its counts; app_id NULL: every application's (or
-- app_name's), for an admin token and the dashboard.
SELECT b.*, a.name AS app_name, c.counts, c.percent
FROM (
    SELECT * FROM jobs_batch
    WHERE (%(app_id)s::uuid IS NULL OR app_id = %(app_id)s)
      AND (%(app_name)s::text IS NULL OR app_id = (SELECT id FROM jobs_app WHERE name = %(app_name)s))
      AND (%(before_created_at)s::timestamptz IS NULL
           OR (created_at, id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s
) AS b
JOIN jobs_app a ON a.id = b.app_id,
LATERAL (/* include _batch_counts */) AS c
ORDER BY b.created_at DESC, b.id DESC;

-- batch_events --
-- A batch's own history, oldest first (of one application; app_id NULL: of any).
SELECT e.id, e.at, e.kind, e.data
FROM jobs_batch_event e
JOIN jobs_batch b ON b.id = e.batch_id
WHERE e.batch_id = %(id)s AND (%(app_id)s::uuid IS NULL OR b.app_id = %(app_id)s)
ORDER BY e.id;

-- batch_cancel_lock --
-- Serialise the cancels of one batch until the transaction ends, so that of two racing
-- the second's batch_cancel_request (a later statement: a fresh snapshot) sees the first's
-- mark and records nothing. An advisory lock no worker takes: it cannot deadlock with the
-- job and batch row locks, which a cancel still takes in a job's order (jobs, then batch).
SELECT pg_advisory_xact_lock(hashtextextended('jobs_batch_cancel:' || %(id)s::text, 0));

-- batch_cancel_request --
-- Record that an application asks for its batch to be cancelled, while some of its jobs
-- are unfinished (no row: unknown for this application, or every job already ended); a
-- repeat of the request is not recorded again. Only reads the batch row: its lock is
-- taken after the jobs' (batch_cancel_jobs), in the order a job's terminal transition
-- takes them.
WITH batch AS (
    SELECT id, unfinished, cancel_requested_at FROM jobs_batch
    WHERE id = %(id)s AND app_id = %(app_id)s AND unfinished > 0
), event AS (
    INSERT INTO jobs_batch_event (batch_id, kind, data)
    SELECT id, 'cancel_requested', jsonb_build_object('unfinished', unfinished)
    FROM batch WHERE cancel_requested_at IS NULL
)
SELECT id AS batch_id FROM batch;

-- batch_cancel_jobs --
-- Cancel every waiting job of the batch at once and ask every running one to stop, as
-- job_cancel does for one (their events, their callbacks, the batch's count). The jobs
-- are locked in id order first, so two cancels of one batch cannot deadlock.
WITH target AS (
    SELECT id, cancel_requested_at IS NOT NULL AS asked FROM jobs_job
    WHERE batch_id = %(id)s AND app_id = %(app_id)s AND status IN ('scheduled', 'queued', 'running')
    ORDER BY id
    FOR UPDATE
), /* include _cancel_update */, /* include _cancel_events */, /* include _callback_insert */
SELECT count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled,
       count(*) FILTER (WHERE status = 'running')::int AS stopping
FROM job;

-- batch_cancel_mark --
-- After batch_cancel_jobs, in its transaction: the batch shows that its cancel was asked.
UPDATE jobs_batch SET cancel_requested_at = COALESCE(cancel_requested_at, now()), updated_at = now()
WHERE id = %(id)s AND app_id = %(app_id)s
RETURNING id;

-- batch_active --
-- The oldest unfinished batches of every application with their counts, for the monitor
-- (the partial index jobs_batch_active), and how many there are in all.
SELECT b.id, b.total, b.unfinished, b.created_at, b.cancel_requested_at, a.name AS app_name,
       c.counts, c.percent, clock_timestamp() AS now,
       (SELECT count(*) FROM jobs_batch WHERE finished_at IS NULL) AS active
FROM (SELECT * FROM jobs_batch WHERE finished_at IS NULL ORDER BY created_at LIMIT %(limit)s) AS b
JOIN jobs_app a ON a.id = b.app_id,
LATERAL (/* include _batch_counts */) AS c
ORDER BY b.created_at, b.id;

-- metrics_batches --
-- Batches per state (active: some job unfinished; finished) and the unfinished jobs of
-- the active ones, for /metrics.
SELECT count(*) FILTER (WHERE finished_at IS NULL) AS active,
       count(*) FILTER (WHERE finished_at IS NOT NULL) AS finished,
       COALESCE(sum(unfinished), 0) AS unfinished_jobs
FROM jobs_batch;
