-- Schedules: a job body fired on a calendar (a five-field cron expression in an IANA time
-- zone) or at a fixed interval, by the clusters' maintenance pass
-- (jobs/runtime/maintenance/schedule.py). Like every record here, never deleted: a
-- schedule is ended, and an ended schedule never changes again.
CREATE TABLE jobs_schedule (
    id             uuid PRIMARY KEY,
    app_id         uuid NOT NULL REFERENCES jobs_app (id),
    name           text CHECK (length(name) BETWEEN 1 AND 200),
    state          text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'ended')),
    -- Either a cron expression and its time zone, or an interval in seconds.
    cron           text,
    timezone       text,
    every_seconds  integer CHECK (every_seconds >= 1),
    -- What the fire times missed while no cluster could fire them become: one job, or none.
    catch_up       text NOT NULL CHECK (catch_up IN ('once', 'skip')),
    -- The validated job body every fire creates a job from (jobs.services.JobRequest).
    job            jsonb NOT NULL,
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
    starts_at      timestamptz,
    ends_at        timestamptz,
    -- The earliest fire time not yet handled (NULL once ended); the maintenance pass takes
    -- the active schedules whose next_fire_at has come, by the database's clock.
    next_fire_at   timestamptz,
    last_fire_at   timestamptz,
    last_job_id    uuid REFERENCES jobs_job (id),
    -- Jobs this schedule created.
    fires          bigint NOT NULL DEFAULT 0 CHECK (fires >= 0),
    -- A pass that failed on this schedule (not on the database: on the schedule itself)
    -- leaves it alone until then, so it cannot hold up the others.
    failing_until  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    ended_at       timestamptz,
    CONSTRAINT jobs_schedule_cron_or_every CHECK (
        (cron IS NOT NULL AND timezone IS NOT NULL AND every_seconds IS NULL)
        OR (cron IS NULL AND timezone IS NULL AND every_seconds IS NOT NULL)),
    CONSTRAINT jobs_schedule_ended CHECK (
        (state = 'ended') = (ended_at IS NOT NULL) AND (state = 'ended') = (next_fire_at IS NULL))
);
CREATE INDEX jobs_schedule_due ON jobs_schedule (next_fire_at) WHERE state = 'active';
CREATE INDEX jobs_schedule_app_created ON jobs_schedule (app_id, created_at DESC, id DESC);
CREATE INDEX jobs_schedule_created ON jobs_schedule (created_at DESC, id DESC);

-- A schedule's history: created, changed, paused, resumed, ended, and each fire time's
-- fate (fired with its job, folded into one job, or skipped). Append-only.
CREATE TABLE jobs_schedule_event (
    id           bigserial PRIMARY KEY,
    schedule_id  uuid NOT NULL REFERENCES jobs_schedule (id),
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind         text NOT NULL CONSTRAINT jobs_schedule_event_kind_known CHECK (kind IN
                   ('created', 'changed', 'paused', 'resumed', 'ended', 'fired', 'folded', 'skipped', 'failed')),
    data         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX jobs_schedule_event_schedule ON jobs_schedule_event (schedule_id, id);
-- /metrics counts missed fire times: only those entries, not every 'fired' one.
CREATE INDEX jobs_schedule_event_missed ON jobs_schedule_event (kind) WHERE kind IN ('folded', 'skipped');

CREATE TRIGGER jobs_schedule_no_delete BEFORE DELETE ON jobs_schedule
    FOR EACH ROW EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_schedule_no_truncate BEFORE TRUNCATE ON jobs_schedule
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_schedule_event_no_delete BEFORE DELETE ON jobs_schedule_event
    FOR EACH ROW EXECUTE FUNCTION jobs_forbid_delete();
CREATE TRIGGER jobs_schedule_event_no_truncate BEFORE TRUNCATE ON jobs_schedule_event
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_forbid_delete();

CREATE FUNCTION jobs_schedule_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'jobplatform: schedule events are append-only' USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER jobs_schedule_event_no_update BEFORE UPDATE ON jobs_schedule_event
    FOR EACH ROW EXECUTE FUNCTION jobs_schedule_event_append_only();

-- An ended schedule never changes again.
CREATE FUNCTION jobs_schedule_ended_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'jobplatform: schedule % is ended and can no longer change', OLD.id
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER jobs_schedule_ended_final BEFORE UPDATE ON jobs_schedule
    FOR EACH ROW WHEN (OLD.state = 'ended')
    EXECUTE FUNCTION jobs_schedule_ended_is_final();

-- A job created by a schedule names it and the fire time it was created for. NOT VALID:
-- every existing row has neither, so nothing needs scanning; new rows are checked.
ALTER TABLE jobs_job ADD COLUMN schedule_id uuid, ADD COLUMN fire_time timestamptz;
ALTER TABLE jobs_job ADD CONSTRAINT jobs_job_schedule_fk
    FOREIGN KEY (schedule_id) REFERENCES jobs_schedule (id) NOT VALID;
ALTER TABLE jobs_job ADD CONSTRAINT jobs_job_schedule_fire_time
    CHECK ((schedule_id IS NULL) = (fire_time IS NULL)) NOT VALID;
