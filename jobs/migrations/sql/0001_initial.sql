-- jobplatform schema. Project data lives only in these tables, written through
-- jobs/db.py with the named queries in jobs/sql/. Nothing here is ever deleted.

CREATE TABLE jobs_app (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs_token (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    app_id      uuid NOT NULL REFERENCES jobs_app (id),
    -- sha256 of the token; the token itself is shown once and never stored.
    token_hash  text NOT NULL UNIQUE,
    -- first characters of the token, to recognise it in listings.
    prefix      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE jobs_job (
    id                   uuid PRIMARY KEY,
    app_id               uuid NOT NULL REFERENCES jobs_app (id),
    type                 text NOT NULL,
    params               jsonb NOT NULL,
    metadata             jsonb NOT NULL DEFAULT '{}'::jsonb,
    status               text NOT NULL CHECK (status IN
                           ('scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
    progress             jsonb,
    result               jsonb,
    error                jsonb,
    attempts             integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts         integer NOT NULL CHECK (max_attempts >= 1),
    timeout_seconds      integer NOT NULL CHECK (timeout_seconds >= 1),
    run_at               timestamptz,
    lease_expires_at     timestamptz,
    worker               text,
    -- django_q_ormq.id of the latest delivery envelope (no FK: django-q2 deletes
    -- envelopes once acknowledged; the reconciler notices a vanished one).
    envelope_id          bigint,
    enqueued_at          timestamptz,
    cancel_requested_at  timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    finished_at          timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX jobs_job_app_created ON jobs_job (app_id, created_at DESC, id DESC);
CREATE INDEX jobs_job_active ON jobs_job (status, lease_expires_at)
    WHERE status IN ('scheduled', 'queued', 'running');
CREATE INDEX jobs_job_metadata ON jobs_job USING gin (metadata jsonb_path_ops);

CREATE TABLE jobs_event (
    id       bigserial PRIMARY KEY,
    job_id   uuid NOT NULL REFERENCES jobs_job (id),
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind     text NOT NULL,
    attempt  integer NOT NULL DEFAULT 0,
    data     jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX jobs_event_job ON jobs_event (job_id, id);

-- Nothing is deleted: DELETE and TRUNCATE raise in the database itself.
CREATE FUNCTION jobs_forbid_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'jobplatform: % on % is forbidden, records are never deleted', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER jobs_job_no_delete BEFORE DELETE ON jobs_job
    FOR EACH ROW EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_job_no_truncate BEFORE TRUNCATE ON jobs_job
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_event_no_delete BEFORE DELETE ON jobs_event
    FOR EACH ROW EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_event_no_truncate BEFORE TRUNCATE ON jobs_event
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_app_no_delete BEFORE DELETE ON jobs_app
    FOR EACH ROW EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_app_no_truncate BEFORE TRUNCATE ON jobs_app
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_token_no_delete BEFORE DELETE ON jobs_token
    FOR EACH ROW EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_token_no_truncate BEFORE TRUNCATE ON jobs_token
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_forbid_delete();

-- The history is append-only.
CREATE FUNCTION jobs_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'jobplatform: job events are append-only' USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER jobs_event_no_update BEFORE UPDATE ON jobs_event
    FOR EACH ROW EXECUTE FUNCTION jobs_event_append_only();

-- Terminal states never change again.
CREATE FUNCTION jobs_job_terminal_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'jobplatform: job % is % and can no longer change', OLD.id, OLD.status
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER jobs_job_terminal_final BEFORE UPDATE ON jobs_job
    FOR EACH ROW WHEN (OLD.status IN ('succeeded', 'failed', 'cancelled'))
    EXECUTE FUNCTION jobs_job_terminal_is_final();
