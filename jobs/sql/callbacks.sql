-- The callbacks table: the outbox of completion callbacks (written by the jobs queries'
-- _callback_insert fragment), taken, delivered and retried here. A row reports a job
-- (job_id) or a batch (batch_id, when its last job ended); each attempt is recorded in that
-- job's or that batch's history.

-- _callback_host --
-- Fragment (an expression): the host a callback goes to, lower-case, without brackets or
-- port (what JOBS_CALLBACK_ALLOWED_HOSTS names); the deliverer counts its deliveries per host.
COALESCE(lower(trim(BOTH '[]' FROM substring(c.url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(\[[^]/]*\]|[^/?#:]*)'))), '')

-- callback_take --
-- Take due callbacks for one delivery attempt each: they become invisible to other
-- deliverers for %(lease)s seconds (a deliverer that dies mid-way only delays them).
-- Callbacks to the hosts in %(busy_hosts)s (a JSON array: hosts this deliverer already
-- has enough deliveries under way to) stay for later, so a slow host holds only its own.
WITH due AS (
    SELECT c.id, COALESCE(j.app_id, b.app_id) AS app_id FROM jobs_callback c
    LEFT JOIN jobs_job j ON j.id = c.job_id
    LEFT JOIN jobs_batch b ON b.id = c.batch_id
    WHERE c.delivered_at IS NULL AND c.gave_up_at IS NULL AND c.due_at <= now()
      AND NOT (/* include _callback_host */ = ANY (ARRAY(SELECT jsonb_array_elements_text(%(busy_hosts)s::jsonb))))
    ORDER BY c.due_at
    LIMIT %(limit)s
    FOR UPDATE OF c SKIP LOCKED
)
UPDATE jobs_callback c
SET attempts = c.attempts + 1, due_at = now() + make_interval(secs => %(lease)s)
FROM due, jobs_app a
WHERE c.id = due.id AND a.id = due.app_id
RETURNING c.id, c.job_id, c.batch_id, c.url, c.attempts, a.callback_secret, /* include _callback_host */ AS host;

-- _callback_recorded --
-- Fragment (CTEs): a delivery attempt (the CTE "recorded": job_id or batch_id, and data)
-- in the history of the job or of the batch it reported. The finished job's row is locked
-- first (as job_lock_history does): its later entries commit in id order.
reported AS (
    SELECT j.id, j.attempts FROM jobs_job j JOIN recorded r ON r.job_id = j.id
    FOR NO KEY UPDATE OF j
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT r.job_id, 'callback', j.attempts, r.data FROM recorded r JOIN reported j ON j.id = r.job_id
), batch_events AS (
    INSERT INTO jobs_batch_event (batch_id, kind, data)
    SELECT r.batch_id, 'callback', r.data FROM recorded r WHERE r.batch_id IS NOT NULL
)

-- callback_delivered --
-- A delivery answered 2xx: done, and recorded in the job's history (only by the
-- deliverer that took it last: fenced by the attempt count).
WITH callback AS (
    UPDATE jobs_callback SET delivered_at = now()
    WHERE id = %(callback_id)s AND attempts = %(attempts)s AND delivered_at IS NULL AND gave_up_at IS NULL
    RETURNING job_id, batch_id, url, attempts
), recorded AS (
    SELECT c.job_id, c.batch_id,
           jsonb_build_object('url', c.url, 'delivery', c.attempts, 'status', %(status)s::int, 'delivered', true) AS data
    FROM callback c
), /* include _callback_recorded */
SELECT job_id, batch_id FROM callback;

-- callback_failed --
-- A delivery failed: tried again after %(delay)s seconds, or given up after its last
-- attempt; recorded in the job's history either way.
WITH callback AS (
    UPDATE jobs_callback
    SET due_at = now() + make_interval(secs => %(delay)s),
        gave_up_at = CASE WHEN attempts >= %(max_attempts)s THEN now() END
    WHERE id = %(callback_id)s AND attempts = %(attempts)s AND delivered_at IS NULL AND gave_up_at IS NULL
    RETURNING job_id, batch_id, url, attempts, gave_up_at IS NOT NULL AS gave_up, due_at
), recorded AS (
    SELECT c.job_id, c.batch_id,
           jsonb_strip_nulls(jsonb_build_object(
               'url', c.url, 'delivery', c.attempts, 'status', %(status)s::int, 'error', %(error)s::text,
               'delivered', false, 'gave_up', c.gave_up,
               'next_attempt_at', CASE WHEN NOT c.gave_up THEN c.due_at END)) AS data
    FROM callback c
), /* include _callback_recorded */
SELECT job_id, batch_id FROM callback;

-- callback_job --
-- The job a callback reports (any application's: the deliverer is the platform).
SELECT * FROM jobs_job WHERE id = %(id)s;
