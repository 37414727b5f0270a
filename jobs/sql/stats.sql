-- The operator's figures: the monitor (jobs_top), /ready, the dashboard's overview and
-- /metrics (jobs.selectors.stats). Each reads through an index: jobs_job_finished,
-- jobs_job_failed (migration 0007), jobs_job_active, jobs_job_metrics and
-- jobs_event_metrics (migration 0008).

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

-- stats_throughput --
-- Jobs created, and jobs finished per terminal status, within the last %(seconds)s seconds.
WITH since AS (SELECT now() - make_interval(secs => %(seconds)s) AS at)
SELECT count(*) FILTER (WHERE j.created_at >= since.at) AS created,
       count(*) FILTER (WHERE j.status = 'succeeded' AND j.finished_at >= since.at) AS succeeded,
       count(*) FILTER (WHERE j.status = 'failed' AND j.finished_at >= since.at) AS failed,
       count(*) FILTER (WHERE j.status = 'cancelled' AND j.finished_at >= since.at) AS cancelled
FROM jobs_job j, since
WHERE j.created_at >= since.at OR j.finished_at >= since.at;

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

-- metrics_event_counts --
-- Retries and rescues per job type, for /metrics: the partial index jobs_event_metrics
-- (migration 0008) holds only these kinds, so the scan grows with them, not with history.
SELECT e.kind, j.type, count(*) AS events
FROM jobs_event e
JOIN jobs_job j ON j.id = e.job_id
WHERE e.kind IN ('retried', 'rescued')
GROUP BY e.kind, j.type;
