-- Batches: many jobs created together in one transaction and followed as one.

CREATE TABLE jobs_batch (
    id                   uuid PRIMARY KEY,
    app_id               uuid NOT NULL REFERENCES jobs_app (id),
    metadata             jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- POSTed the batch resource, once, when its last job ends (through jobs_callback).
    callback_url         text,
    total                integer NOT NULL CHECK (total >= 1),
    -- Jobs not yet ended. Every terminal transition of a job of the batch counts it down in
    -- the same statement (_batch_job_ended, jobs/sql/batches.sql); the batch row's lock
    -- orders jobs ending at the same moment, so exactly one of them brings it to 0.
    unfinished           integer NOT NULL CHECK (unfinished BETWEEN 0 AND total),
    idempotency_key      text,
    request_hash         text,
    cancel_requested_at  timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    -- When its last job ended: set exactly when unfinished reaches 0.
    finished_at          timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_batch_finished_when_done CHECK ((unfinished = 0) = (finished_at IS NOT NULL))
);

CREATE INDEX jobs_batch_app_created ON jobs_batch (app_id, created_at DESC, id DESC);
CREATE INDEX jobs_batch_created ON jobs_batch (created_at DESC, id DESC);
CREATE INDEX jobs_batch_active ON jobs_batch (created_at) WHERE finished_at IS NULL;
CREATE UNIQUE INDEX jobs_batch_idempotency ON jobs_batch (app_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- A batch's own history (its jobs keep theirs in jobs_event): append-only.
CREATE TABLE jobs_batch_event (
    id        bigserial PRIMARY KEY,
    batch_id  uuid NOT NULL REFERENCES jobs_batch (id),
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind      text NOT NULL
              CONSTRAINT jobs_batch_event_kind_known CHECK (kind IN ('created', 'cancel_requested', 'finished', 'callback')),
    data      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX jobs_batch_event_batch ON jobs_batch_event (batch_id, id);

CREATE FUNCTION jobs_batch_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'jobplatform: batch events are append-only' USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER jobs_batch_event_no_update BEFORE UPDATE ON jobs_batch_event
    FOR EACH ROW EXECUTE FUNCTION jobs_batch_event_append_only();
CREATE TRIGGER jobs_batch_no_delete BEFORE DELETE ON jobs_batch
    FOR EACH ROW EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_batch_no_truncate BEFORE TRUNCATE ON jobs_batch
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_batch_event_no_delete BEFORE DELETE ON jobs_batch_event
    FOR EACH ROW EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_batch_event_no_truncate BEFORE TRUNCATE ON jobs_batch_event
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_forbid_delete();

-- A job's batch. The foreign keys are added NOT VALID (no scan of existing rows under the
-- ALTER's lock; every existing row is NULL) and validated by migration 0020.
ALTER TABLE jobs_job ADD COLUMN batch_id uuid;
ALTER TABLE jobs_job ADD CONSTRAINT jobs_job_batch_fk FOREIGN KEY (batch_id) REFERENCES jobs_batch (id) NOT VALID;

-- The outbox carries batch callbacks too: each row reports a job or a batch, never both.
ALTER TABLE jobs_callback ALTER COLUMN job_id DROP NOT NULL;
ALTER TABLE jobs_callback ADD COLUMN batch_id uuid;
ALTER TABLE jobs_callback ADD CONSTRAINT jobs_callback_batch_fk
    FOREIGN KEY (batch_id) REFERENCES jobs_batch (id) NOT VALID;
ALTER TABLE jobs_callback ADD CONSTRAINT jobs_callback_one_subject
    CHECK (num_nonnulls(job_id, batch_id) = 1) NOT VALID;
-- At most one callback per batch, enforced by the database itself. Built here, in this
-- migration's transaction (not CONCURRENTLY): every existing row's batch_id is NULL, so
-- the partial index is empty; the build only reads the outbox once, blocking its writes
-- (jobs ending) for that long.
CREATE UNIQUE INDEX jobs_callback_batch_once ON jobs_callback (batch_id) WHERE batch_id IS NOT NULL;
