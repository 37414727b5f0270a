-- A job's log (jobs_log): lines appended by its running attempt in batches
-- (jobs.services.joblog), read a page at a time (jobs.selectors.joblog).

-- job_log_append --
-- Append a batch of a running attempt's lines (%(lines)s: a JSON array of {at, level,
-- message, fields}) and then its notes (%(notes)s, the same shape), and count %(dropped)s
-- lines it dropped; the job keeps at most %(max_lines)s lines, the rest of the batch is
-- counted as dropped too. Notes (on lines dropped for the rate) are outside that bound
-- and the line count. Returns the room left; no row back means the run is stale (nothing
-- written). Not waiting for the disk, like progress: a database crash may lose the last
-- lines, never a checkpoint.
WITH owner AS (
    SELECT id, log_lines FROM jobs_job
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
    FOR UPDATE
), batch AS (
    SELECT line, n, n <= GREATEST(0, %(max_lines)s - owner.log_lines) AS kept
    FROM owner, jsonb_array_elements(%(lines)s::jsonb) WITH ORDINALITY AS b(line, n)
), notes AS (
    SELECT line, jsonb_array_length(%(lines)s::jsonb) + n AS n
    FROM owner, jsonb_array_elements(%(notes)s::jsonb) WITH ORDINALITY AS b(line, n)
), written AS (
    INSERT INTO jobs_log (job_id, attempt, at, level, message, fields)
    SELECT %(id)s, %(attempt)s, (line->>'at')::timestamptz, line->>'level', line->>'message',
           COALESCE(line->'fields', '{}'::jsonb)
    FROM (SELECT line, n FROM batch WHERE kept UNION ALL SELECT line, n FROM notes) AS w
    ORDER BY n
    RETURNING 1
), job AS (
    UPDATE jobs_job j
    SET log_lines = j.log_lines + (SELECT count(*) FROM batch WHERE kept),
        log_dropped = j.log_dropped + %(dropped)s + (SELECT count(*) FROM batch WHERE NOT kept),
        updated_at = now()
    FROM owner
    WHERE j.id = owner.id
    RETURNING j.log_lines
)
SELECT GREATEST(0, %(max_lines)s - log_lines) AS room,
       set_config('synchronous_commit', 'off', true) AS commit_mode
FROM job;

-- job_log_page --
-- A page of a job's log, oldest first: the lines after line %(after_id)s, optionally only
-- those of some levels (comma-separated); keyset on jobs_log_job.
SELECT id, attempt, at, level, message, fields
FROM jobs_log
WHERE job_id = %(id)s AND id > %(after_id)s
  AND (%(levels)s::text IS NULL OR level = ANY(string_to_array(%(levels)s::text, ',')))
ORDER BY id
LIMIT %(limit)s;

-- job_log_tail --
-- The latest %(limit)s lines of a job's log, oldest first (a first look before tailing).
SELECT id, attempt, at, level, message, fields
FROM (SELECT * FROM jobs_log WHERE job_id = %(id)s ORDER BY id DESC LIMIT %(limit)s) AS latest
ORDER BY id;
