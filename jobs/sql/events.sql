-- The events table: a job's append-only history (written by the jobs queries).

-- job_events --
-- A job's history, oldest first (the job must belong to the application; app_id NULL:
-- to any application, for an admin token).
SELECT e.id, e.at, e.kind, e.attempt, e.data
FROM jobs_event e
JOIN jobs_job j ON j.id = e.job_id
WHERE e.job_id = %(id)s AND (%(app_id)s::uuid IS NULL OR j.app_id = %(app_id)s)
ORDER BY e.id;
