-- Exactly one job per (schedule, fire time), whatever the number of clusters, their
-- crashes or their clocks: the database refuses a second one. Partial: only the jobs a
-- schedule created are in it. CONCURRENTLY: job creation is not blocked meanwhile.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_schedule_fire
    ON jobs_job (schedule_id, fire_time) WHERE schedule_id IS NOT NULL;
