-- Indexes for the operator's view (jobs_top): jobs finished in the last minute, and
-- the latest failures. CONCURRENTLY: jobs are never deleted, so the table can be big
-- and must keep taking writes while these build. One statement per string (the
-- migration is not atomic; CONCURRENTLY cannot run inside a transaction).
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_finished ON jobs_job (finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_failed ON jobs_job (finished_at DESC, id DESC)
    WHERE status = 'failed';
