-- The dashboard lists every application's jobs newest first, keyset-paginated on
-- (created_at, id): without this index each page would sort the whole table.
-- CONCURRENTLY: job creation is not blocked while the index is built.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_created ON jobs_job (created_at DESC, id DESC);
