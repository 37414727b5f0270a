-- Durable jobs: checkpoints, per-job logs, re-runs (issue 15, parts 1 to 3).

-- The latest checkpoint of a job (any JSON, written by its running attempt, read by the
-- next one); the job it re-runs; its log's line count and the lines dropped over a bound.
-- Constant defaults: no table rewrite. The constraints are added NOT VALID (no scan of
-- the existing rows under this ALTER's lock: they all hold NULL or 0) and checked by 0020.
ALTER TABLE jobs_job
    ADD COLUMN checkpoint     jsonb,
    ADD COLUMN checkpoint_at  timestamptz,
    ADD COLUMN rerun_of       uuid,
    ADD COLUMN log_lines      integer NOT NULL DEFAULT 0,
    ADD COLUMN log_dropped    bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs_job ADD CONSTRAINT jobs_job_rerun_of_fk FOREIGN KEY (rerun_of) REFERENCES jobs_job (id) NOT VALID;
ALTER TABLE jobs_job ADD CONSTRAINT jobs_job_log_lines_check CHECK (log_lines >= 0) NOT VALID;
ALTER TABLE jobs_job ADD CONSTRAINT jobs_job_log_dropped_check CHECK (log_dropped >= 0) NOT VALID;

-- A job's log: what its code said, line by line, per attempt. Append-only, never deleted.
CREATE TABLE jobs_log (
    id       bigserial PRIMARY KEY,
    job_id   uuid NOT NULL REFERENCES jobs_job (id),
    attempt  integer NOT NULL CHECK (attempt >= 1),
    -- when the job logged it (the worker's clock: lines are written in batches)
    at       timestamptz NOT NULL,
    level    text NOT NULL CHECK (level IN ('debug', 'info', 'warning', 'error')),
    message  text NOT NULL,
    fields   jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Pages and tails of one job's log walk this index (keyset on id).
CREATE INDEX jobs_log_job ON jobs_log (job_id, id);

CREATE TRIGGER jobs_log_no_delete BEFORE DELETE ON jobs_log
    FOR EACH ROW EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_log_no_truncate BEFORE TRUNCATE ON jobs_log
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_forbid_delete();

CREATE FUNCTION jobs_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'jobplatform: job log lines are append-only' USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER jobs_log_no_update BEFORE UPDATE ON jobs_log
    FOR EACH ROW EXECUTE FUNCTION jobs_log_append_only();
