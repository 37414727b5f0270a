-- The apps table: the applications that own jobs.

-- app_get_or_create --
-- Return the application with this name, creating it if needed.
WITH created AS (
    INSERT INTO jobs_app (name) VALUES (%(name)s)
    ON CONFLICT (name) DO NOTHING
    RETURNING id, name, created_at
)
SELECT id, name, created_at FROM created
UNION ALL
SELECT id, name, created_at FROM jobs_app WHERE name = %(name)s
LIMIT 1;

-- app_set_max_running --
-- Set (or clear, with NULL) an application's own cap on running jobs.
UPDATE jobs_app SET max_running = %(max_running)s WHERE name = %(name)s
RETURNING id, name, max_running;

-- app_rotate_callback_secret --
-- Give an application a new callback signing secret.
UPDATE jobs_app SET callback_secret = %(secret)s WHERE name = %(name)s
RETURNING name, callback_secret;

-- app_name_get --
-- The name of the application with this id (what JOBS_SOURCE_APPS names it by).
SELECT name FROM jobs_app WHERE id = %(id)s;
