-- The terminal monitors' figures beyond stats.sql (jobs.selectors.monitors): what the
-- clusters' workers are running (jobs_top and qinfo), and qinfo's 24-hour figures.
-- django-q2's own monitors count its task table, which the platform never writes.

-- monitor_running_by_worker --
-- Running jobs per worker process, for the workers named in %(workers)s (a JSON array of "host:pid").
SELECT worker, count(*) AS jobs FROM jobs_job
WHERE status = 'running' AND worker IN (SELECT jsonb_array_elements_text(%(workers)s))
GROUP BY worker ORDER BY worker;

-- monitor_succeeded_recently --
-- Jobs that succeeded within the last %(seconds)s seconds, and their mean run time in seconds (started to finished).
SELECT count(*) AS jobs, COALESCE(avg(EXTRACT(EPOCH FROM finished_at - started_at)), 0)::float8 AS mean_seconds
FROM jobs_job
WHERE finished_at >= now() - make_interval(secs => %(seconds)s) AND status = 'succeeded';
