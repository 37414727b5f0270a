-- Fairness: per-application caps on unfinished and on running jobs.
-- NULL: the JOBS_MAX_RUNNING_PER_APP setting applies.
ALTER TABLE jobs_app ADD COLUMN max_running integer CHECK (max_running >= 0);

-- Whether an application may start one more job now. With a cap, the count runs after
-- an advisory lock on the application, in a fresh snapshot (a VOLATILE function's query
-- sees what committed before it started), so concurrent claims never exceed the cap; the
-- lock is held until the claim commits.
CREATE FUNCTION jobs_app_has_room(app uuid, default_cap integer) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cap integer;
BEGIN
    SELECT COALESCE(max_running, default_cap) INTO cap FROM jobs_app WHERE id = app;
    IF cap IS NULL OR cap <= 0 THEN
        RETURN true;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('jobs_app_running:' || app::text, 0));
    RETURN (SELECT count(*) FROM jobs_job WHERE app_id = app AND status = 'running') < cap;
END
$$;
