-- Counting an application's unfinished (or running) jobs stays an index-only walk. Built
-- without blocking writes to a large existing table (the migration is not atomic).
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_app_active ON jobs_job (app_id, status)
    WHERE status IN ('scheduled', 'queued', 'running');
