-- Reading jobs: one job, a page of jobs, a job's history (jobs.selectors.jobs).

-- _job_by_id --
-- Fragment (a query): the job with this id, of one application (app_id NULL: of any
-- application, for an admin token, the dashboard or the platform itself).
SELECT * FROM jobs_job WHERE id = %(id)s AND (%(app_id)s::uuid IS NULL OR app_id = %(app_id)s)

-- job_get --
-- One job by id (see _job_by_id).
/* include _job_by_id */;

-- job_get_any --
-- One job with its application's name and its latest event's id (the dashboard's
-- validator: a new event changes it even when the row does not).
SELECT j.*, a.name AS app_name,
       (SELECT max(e.id) FROM jobs_event e WHERE e.job_id = j.id) AS last_event_id
FROM (/* include _job_by_id */) AS j JOIN jobs_app a ON a.id = j.app_id;

-- job_get_by_idempotency_key --
-- The job an application created with this Idempotency-Key, if any.
SELECT * FROM jobs_job WHERE app_id = %(app_id)s AND idempotency_key = %(idempotency_key)s;

-- _job_list_where --
-- Fragment (conditions): an application's jobs (app_id NULL: every application's, or
-- app_name's, for an admin token), optionally filtered (any of several statuses,
-- comma-separated; created strictly after / before an instant; type; queue; one batch's,
-- through jobs_job_batch), after the keyset cursor. The client-side parameters fold the NULL tests away, so the created_at
-- bounds and the cursor are ranges on the index jobs_job_app_created (jobs_job_created
-- for every application) and the rest are filters on its rows.
(%(app_id)s::uuid IS NULL OR app_id = %(app_id)s)
  AND (%(app_name)s::text IS NULL OR app_id = (SELECT id FROM jobs_app WHERE name = %(app_name)s))
  AND (%(statuses)s::text IS NULL OR status = ANY(string_to_array(%(statuses)s::text, ',')))
  AND (%(created_after)s::timestamptz IS NULL OR created_at > %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR created_at < %(created_before)s::timestamptz)
  AND (%(type)s::text IS NULL OR type = %(type)s)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(batch_id)s::uuid IS NULL OR batch_id = %(batch_id)s)
  AND (%(before_created_at)s::timestamptz IS NULL
       OR (created_at, id) < (%(before_created_at)s::timestamptz, %(before_id)s::uuid))

-- _job_list_page --
-- Fragment (a query): a page of jobs (_job_list_where), newest first, whose metadata
-- contains %(metadata)s when it is not NULL; the planner picks the plan.
SELECT * FROM jobs_job
WHERE /* include _job_list_where */
  AND (%(metadata)s::jsonb IS NULL OR metadata @> %(metadata)s::jsonb)
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s

-- _job_list_page_walked --
-- Fragment (a query): the same page as _job_list_page, planned so its cost does not grow
-- with the table. PostgreSQL cannot estimate how many rows contain a metadata value, and a
-- wrong guess made it sort every match of a common value (10,000 at a million rows) for a
-- page of 50. In a large table (at least 4 × %(walk)s rows) the page is first looked for
-- among the newest %(walk)s rows of _job_list_where, walking the index newest first: the
-- same cost at any size for a value that is not rare. Only when that walk neither filled
-- the page nor saw every candidate row, or the table is small, is the page taken through
-- the metadata index (_job_list_page), which is then cheap: the value is rare, or the
-- table small.
WITH walked AS MATERIALIZED (
    SELECT * FROM (
        SELECT * FROM jobs_job
        WHERE /* include _job_list_where */
        ORDER BY created_at DESC, id DESC
        LIMIT %(walk)s
    ) AS newest
    WHERE %(metadata)s::jsonb IS NULL OR metadata @> %(metadata)s::jsonb
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s
), settled AS (
    SELECT (SELECT reltuples >= 4 * %(walk)s FROM pg_class WHERE oid = 'jobs_job'::regclass)
           AND ((SELECT count(*) FROM walked) >= %(limit)s
                OR (SELECT count(*) FROM (SELECT 1 FROM jobs_job WHERE /* include _job_list_where */ LIMIT %(walk)s)
                    AS seen) < %(walk)s) AS by_walk
)
SELECT * FROM walked WHERE (SELECT by_walk FROM settled)
UNION ALL
SELECT * FROM (/* include _job_list_page */) AS matched WHERE NOT (SELECT by_walk FROM settled)
ORDER BY created_at DESC, id DESC

-- job_list --
-- A page of an application's jobs (see _job_list_page).
/* include _job_list_page */;

-- job_list_by_metadata --
-- A page of an application's jobs filtered by metadata (see _job_list_page_walked).
/* include _job_list_page_walked */;

-- job_list_all --
-- A page of every application's jobs with their application's name (the dashboard),
-- with job_list's filters and cursor (app_id and app_name NULL).
SELECT j.*, a.name AS app_name
FROM (/* include _job_list_page_walked */) AS j JOIN jobs_app a ON a.id = j.app_id
ORDER BY j.created_at DESC, j.id DESC;

-- job_events_latest --
-- A job's latest %(limit)s history entries, oldest first, each with how many the job has
-- in all (the dashboard's timeline; any application's job).
SELECT latest.*, (SELECT count(*) FROM jobs_event WHERE job_id = %(id)s) AS total  -- index-only
FROM (
    SELECT e.id, e.at, e.kind, e.attempt, e.data
    FROM jobs_event e
    WHERE e.job_id = %(id)s
    ORDER BY e.id DESC
    LIMIT %(limit)s
) AS latest
ORDER BY latest.id;

-- job_events --
-- A page of a job's history, oldest first: entries after the entry %(after)s (0: from the
-- first), at most %(limit)s (NULL: all). The job must belong to the application (app_id
-- NULL: to any application, for an admin token).
SELECT e.id, e.at, e.kind, e.attempt, e.data
FROM jobs_event e
JOIN jobs_job j ON j.id = e.job_id
WHERE e.job_id = %(id)s AND (%(app_id)s::uuid IS NULL OR j.app_id = %(app_id)s) AND e.id > %(after)s
ORDER BY e.id
LIMIT %(limit)s;
