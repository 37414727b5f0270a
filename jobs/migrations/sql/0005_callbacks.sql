-- Completion callbacks: a job may name a URL the platform POSTs to when it ends.
ALTER TABLE jobs_job ADD COLUMN callback_url text;

-- Each application signs its callbacks with its own secret (HMAC-SHA256); rotated by
-- `rotate_callback_secret`. Two random UUIDs: 244 random bits from pg_strong_random.
ALTER TABLE jobs_app ADD COLUMN callback_secret text NOT NULL
    DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');

-- The outbox: one row per callback to deliver, written by the same statement as the
-- job's terminal transition, so a crash between "finished" and "notified" loses nothing.
CREATE TABLE jobs_callback (
    id           bigserial PRIMARY KEY,
    job_id       uuid NOT NULL REFERENCES jobs_job (id),
    url          text NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    due_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    gave_up_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_callback_due ON jobs_callback (due_at) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX jobs_callback_job ON jobs_callback (job_id);

CREATE TRIGGER jobs_callback_no_delete BEFORE DELETE ON jobs_callback
    FOR EACH ROW EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_callback_no_truncate BEFORE TRUNCATE ON jobs_callback
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_forbid_delete();
