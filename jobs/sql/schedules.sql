-- Schedules and their history (jobs.services.schedules writes, jobs.selectors.schedules
-- reads). A schedule's fire inserts its jobs through job_create (jobs_write.sql) in the
-- same transaction as the schedule's advance, so a fire time's job, its envelope, its
-- events and the schedule's next fire time commit together or not at all.

-- schedule_clock --
-- The database's clock: every fire time is computed against it, never a cluster's.
SELECT now() AS now;

-- schedule_lock_app --
-- Serialise schedule creates of one application until the transaction ends, so the cap
-- schedule_create checks holds when they race (READ COMMITTED: schedule_create's count,
-- a later statement, sees every schedule committed before the lock was granted).
SELECT pg_advisory_xact_lock(hashtextextended('jobs_app_schedules:' || %(app_id)s::text, 0));

-- schedule_create --
-- Insert a schedule and its 'created' event in one statement; returns the row, or
-- nothing when the application already has max_schedules schedules not ended (exact
-- after schedule_lock_app).
WITH schedule AS (
    INSERT INTO jobs_schedule (id, app_id, name, state, cron, timezone, every_seconds, catch_up, job, metadata,
                               starts_at, ends_at, next_fire_at, created_at, updated_at)
    SELECT %(id)s, %(app_id)s, %(name)s, 'active', %(cron)s, %(timezone)s, %(every_seconds)s, %(catch_up)s,
           %(job)s::jsonb, %(metadata)s::jsonb, %(starts_at)s::timestamptz, %(ends_at)s::timestamptz,
           %(next_fire_at)s::timestamptz,
           -- clock time, so schedules created in one transaction still sort in creation order
           clock_timestamp(), clock_timestamp()
    WHERE %(max_schedules)s <= 0
       OR (SELECT count(*) FROM (SELECT 1 FROM jobs_schedule
                                 WHERE app_id = %(app_id)s AND state <> 'ended'
                                 LIMIT %(max_schedules)s) AS live) < %(max_schedules)s
    RETURNING *
), event AS (
    INSERT INTO jobs_schedule_event (schedule_id, kind, data)
    SELECT id, 'created', %(data)s::jsonb FROM schedule
)
SELECT * FROM schedule;

-- _schedule_shown --
-- Fragment (a query): schedules with their application's name and their last job's
-- status, of one application (app_id NULL: of any application).
SELECT s.*, a.name AS app_name, j.status AS last_job_status
FROM jobs_schedule s
JOIN jobs_app a ON a.id = s.app_id
LEFT JOIN jobs_job j ON j.id = s.last_job_id
WHERE (%(app_id)s::uuid IS NULL OR s.app_id = %(app_id)s)

-- schedule_get --
-- One schedule by id, as shown (see _schedule_shown).
/* include _schedule_shown */ AND s.id = %(id)s;

-- schedule_list --
-- A page of schedules, newest first (keyset on created_at, id), optionally of one state;
-- app_id NULL: every application's (an admin token, the dashboard).
/* include _schedule_shown */
  AND (%(state)s::text IS NULL OR s.state = %(state)s)
  AND (%(before_created_at)s::timestamptz IS NULL
       OR (s.created_at, s.id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))
ORDER BY s.created_at DESC, s.id DESC
LIMIT %(limit)s;

-- schedule_lock --
-- An application's schedule, locked for a change (a firing pass holding it is waited for).
SELECT *, now() AS db_now FROM jobs_schedule WHERE id = %(id)s AND app_id = %(app_id)s FOR UPDATE;

-- schedule_update --
-- Store a schedule's new definition and state (never an ended one: a trigger refuses);
-- a schedule a pass failed on is tried again by the next pass.
UPDATE jobs_schedule
SET name = %(name)s, state = %(state)s, cron = %(cron)s, timezone = %(timezone)s,
    every_seconds = %(every_seconds)s, catch_up = %(catch_up)s, job = %(job)s::jsonb,
    metadata = %(metadata)s::jsonb, starts_at = %(starts_at)s::timestamptz, ends_at = %(ends_at)s::timestamptz,
    next_fire_at = %(next_fire_at)s::timestamptz,
    ended_at = CASE WHEN %(state)s = 'ended' THEN now() END,
    failing_until = NULL,  -- a change may be the fix: the next pass tries it at once
    -- and, for the same next fire time, replays the failed pass (a new one starts afresh)
    failed_at = CASE WHEN next_fire_at IS NOT DISTINCT FROM %(next_fire_at)s::timestamptz THEN failed_at END,
    updated_at = now()
WHERE id = %(id)s AND state <> 'ended'
RETURNING *;

-- schedule_events_insert --
-- Append entries to a schedule's history: %(events)s is a JSON array of {kind, data}, in order.
INSERT INTO jobs_schedule_event (schedule_id, kind, data)
SELECT %(id)s, e.value ->> 'kind', COALESCE(e.value -> 'data', '{}'::jsonb)
FROM jsonb_array_elements(%(events)s::jsonb) WITH ORDINALITY AS e(value, n)
ORDER BY e.n;

-- schedule_take_due --
-- The active schedule whose next fire time came first, by the database's clock, locked
-- for this pass; a schedule another pass holds is skipped, not waited for.
SELECT *, now() AS db_now FROM jobs_schedule
WHERE state = 'active' AND next_fire_at <= now() AND (failing_until IS NULL OR failing_until <= now())
ORDER BY next_fire_at
LIMIT 1
FOR UPDATE SKIP LOCKED;

-- schedule_advance --
-- After a pass fired a schedule: its next fire time (NULL: it ends), its last fire and
-- job, how many jobs it made. Fenced by the next fire time the pass started from: a pass
-- that no longer holds the schedule's state changes nothing.
UPDATE jobs_schedule
SET next_fire_at = %(next_fire_at)s::timestamptz,
    last_fire_at = COALESCE(%(last_fire_at)s::timestamptz, last_fire_at),
    last_job_id = COALESCE(%(last_job_id)s::uuid, last_job_id),
    fires = fires + %(created)s,
    state = CASE WHEN %(next_fire_at)s::timestamptz IS NULL THEN 'ended' ELSE state END,
    ended_at = CASE WHEN %(next_fire_at)s::timestamptz IS NULL THEN now() END,
    failing_until = NULL,
    -- kept (not NULL) while a replayed failed pass has fire times left, cut by the pass's limit
    failed_at = %(failed_at)s::timestamptz,
    updated_at = now()
WHERE id = %(id)s AND state = 'active' AND next_fire_at = %(expected)s::timestamptz
RETURNING id;

-- schedule_fire_failed --
-- A pass failed on this schedule (its own fault, not the database's): it is left alone for
-- %(delay)s seconds, so it cannot hold up the other schedules, and its history says why.
-- failed_at keeps when the first pass failed on this next fire time (%(failed_at)s: the
-- database's clock when that pass began; the retry replays it).
-- Fenced like schedule_advance; its next fire time is unchanged.
WITH schedule AS (
    UPDATE jobs_schedule
    SET failing_until = now() + make_interval(secs => %(delay)s),
        failed_at = COALESCE(failed_at, %(failed_at)s::timestamptz),
        updated_at = now()
    WHERE id = %(id)s AND state = 'active' AND next_fire_at = %(expected)s::timestamptz
    RETURNING id, failing_until
)
INSERT INTO jobs_schedule_event (schedule_id, kind, data)
SELECT id, 'failed', jsonb_build_object('error', %(error)s::jsonb, 'retry_at', failing_until) FROM schedule
RETURNING schedule_id;

-- schedule_events --
-- A page of a schedule's history, newest first (keyset on id), if the schedule belongs to
-- the application (app_id NULL: to any).
SELECT e.id, e.at, e.kind, e.data
FROM jobs_schedule_event e
JOIN jobs_schedule s ON s.id = e.schedule_id
WHERE e.schedule_id = %(id)s AND (%(app_id)s::uuid IS NULL OR s.app_id = %(app_id)s)
  AND (%(before_event)s::bigint IS NULL OR e.id < %(before_event)s::bigint)
ORDER BY e.id DESC
LIMIT %(limit)s;

-- schedule_overview --
-- Schedules not ended, of every application, soonest next fire first (paused ones after
-- the active), with their last job's status: the monitor, the dashboard, /metrics.
SELECT s.id, s.name, s.state, s.cron, s.timezone, s.every_seconds, s.catch_up, s.next_fire_at, s.last_fire_at,
       s.last_job_id, s.fires, s.created_at, a.name AS app_name, j.status AS last_job_status, now() AS db_now
FROM jobs_schedule s
JOIN jobs_app a ON a.id = s.app_id
LEFT JOIN jobs_job j ON j.id = s.last_job_id
WHERE s.state <> 'ended'
ORDER BY s.state = 'paused', s.next_fire_at, s.id
LIMIT %(limit)s;

-- schedule_metrics --
-- Schedules not ended, oldest first (a stable choice: the same schedules keep their series
-- from scrape to scrape), for their own series in /metrics.
SELECT s.id, s.name, s.state, s.next_fire_at, s.last_fire_at, a.name AS app_name, j.status AS last_job_status
FROM jobs_schedule s
JOIN jobs_app a ON a.id = s.app_id
LEFT JOIN jobs_job j ON j.id = s.last_job_id
WHERE s.state <> 'ended'
ORDER BY s.created_at, s.id
LIMIT %(limit)s;

-- schedule_counts --
-- Schedules per state, how late the most overdue active schedule is (seconds, 0: none is),
-- and how many jobs schedules created.
SELECT (SELECT count(*) FROM jobs_schedule WHERE state = 'active') AS active,
       (SELECT count(*) FROM jobs_schedule WHERE state = 'paused') AS paused,
       (SELECT count(*) FROM jobs_schedule WHERE state = 'ended') AS ended,
       (SELECT COALESCE(extract(epoch FROM now() - min(next_fire_at)), 0)
        FROM jobs_schedule WHERE state = 'active' AND next_fire_at <= now()) AS late_seconds,
       (SELECT COALESCE(sum(fires), 0) FROM jobs_schedule) AS jobs_created;

-- schedule_missed_counts --
-- Fire times missed while no cluster could fire them, by what became of them: 'folded'
-- (catch_up once) or 'skipped' (catch_up skip, or refused at the application's cap).
SELECT kind, COALESCE(data ->> 'reason', 'catch_up') AS reason,
       -- too many to count: at least the floor the entry records
       sum(COALESCE((data -> 'missed' ->> 'count')::bigint, (data -> 'missed' ->> 'at_least')::bigint, 0))
           AS fire_times
FROM jobs_schedule_event
WHERE kind IN ('folded', 'skipped')
GROUP BY kind, COALESCE(data ->> 'reason', 'catch_up');
