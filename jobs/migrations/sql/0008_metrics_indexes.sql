-- Indexes for /metrics, which reads its job figures from PostgreSQL at every scrape.
-- CONCURRENTLY: a large jobs table is not locked against writes while they are built.

-- Counts per type and status and the duration histograms read only these columns:
-- an index-only scan, a fraction of the heap (whose rows carry params, metadata, result).
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_metrics
    ON jobs_job (type, status) INCLUDE (attempts, created_at, started_at, finished_at);

-- Retries and rescues per type: only those events, not the whole history.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_event_metrics
    ON jobs_event (kind, job_id) WHERE kind IN ('retried', 'rescued');
