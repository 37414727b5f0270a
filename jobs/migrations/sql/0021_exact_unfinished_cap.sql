-- JOBS_MAX_UNFINISHED_PER_APP held exactly under concurrency. A count in the creating
-- statement's own snapshot misses the jobs of creates running beside it, so eight
-- concurrent creates at a cap of 1 could all pass. Here, with a cap, the count runs after
-- an advisory lock on the application, in a fresh snapshot (a VOLATILE function's query
-- sees what committed before it started, and its own transaction's rows): each create
-- waits for the one before it to commit. The lock is held until the creating transaction
-- ends; with no cap (0, the default) there is no lock and no count.
CREATE FUNCTION jobs_app_unfinished_room(app uuid, cap integer, adding integer) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF cap IS NULL OR cap <= 0 THEN
        RETURN true;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('jobs_app_unfinished:' || app::text, 0));
    -- counted up to the cap and no further (index-only, jobs_job_app_active)
    RETURN (SELECT count(*) FROM (SELECT 1 FROM jobs_job
                                  WHERE app_id = app AND status IN ('scheduled', 'queued', 'running')
                                  LIMIT cap) AS unfinished) + adding <= cap;
END
$$;
