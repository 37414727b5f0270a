-- The events table: a job's append-only history (written by the jobs queries).

-- job_events --
-- A job's history, oldest first (the job must belong to the application; app_id NULL:
-- to any application, for an admin token).
SELECT e.id, e.at, e.kind, e.attempt, e.data
FROM jobs_event e
JOIN jobs_job j ON j.id = e.job_id
WHERE e.job_id = %(id)s AND (%(app_id)s::uuid IS NULL OR j.app_id = %(app_id)s)
ORDER BY e.id;

-- metrics_event_counts --
-- Retries and rescues per job type, for /metrics: the partial index jobs_event_metrics
-- (migration 0008) holds only these kinds, so the scan grows with them, not with history.
SELECT e.kind, j.type, count(*) AS events
FROM jobs_event e
JOIN jobs_job j ON j.id = e.job_id
WHERE e.kind IN ('retried', 'rescued')
GROUP BY e.kind, j.type;

-- job_events_any --
-- A job's history, oldest first, whichever application owns it (the dashboard).
SELECT id, at, kind, attempt, data FROM jobs_event WHERE job_id = %(id)s ORDER BY id;
