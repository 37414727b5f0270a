-- Checkpoints: the state a running attempt stores so that the next one resumes from it
-- (jobs.services.checkpoints). The state is on the job row; the history gets an event.

-- job_checkpoint --
-- Store a running attempt's checkpoint (and extend its lease, like progress), with a
-- 'checkpoint' event when %(event)s is given; no row back means the run is stale. A durable
-- commit even where the server's default is synchronous_commit=off: a resumed attempt
-- starts from this state, so it must survive a crash of the database too.
WITH job AS (
    UPDATE jobs_job
    SET checkpoint = %(checkpoint)s::jsonb,
        checkpoint_at = now(),
        lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),
        updated_at = now()
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
    RETURNING id, attempts, cancel_requested_at, checkpoint_at
), events AS (
    INSERT INTO jobs_event (job_id, kind, attempt, data)
    SELECT id, 'checkpoint', attempts, %(event)s::jsonb FROM job WHERE %(event)s::jsonb IS NOT NULL
)
SELECT cancel_requested_at IS NOT NULL AS cancel_requested, checkpoint_at,
       CASE WHEN current_setting('synchronous_commit') = 'off'
            THEN set_config('synchronous_commit', 'on', true) END AS commit_mode
FROM job;
