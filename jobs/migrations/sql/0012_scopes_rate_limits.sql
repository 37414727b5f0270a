-- Token scopes (what a token may do) and the shared rate-limit counters.

-- jobs:read (read its application's jobs), jobs:write (create and cancel them), admin
-- (read every application's jobs). Tokens issued before this migration keep doing what
-- they did: read and write.
ALTER TABLE jobs_token
    ADD COLUMN scopes text[] NOT NULL DEFAULT '{jobs:read,jobs:write}'
        CONSTRAINT jobs_token_scopes_known
        CHECK (cardinality(scopes) > 0
               AND array_position(scopes, NULL) IS NULL
               AND scopes <@ ARRAY['jobs:read', 'jobs:write', 'admin']::text[]);


-- Fixed-window counters shared by every web worker on every host: one row per limited
-- thing ("token:<id>", "auth:<address>"), the start of its current window and the hits
-- counted in it. UNLOGGED: no WAL for a row rewritten on every request; a crash of the
-- server empties the table, which only resets the windows.
CREATE UNLOGGED TABLE jobs_rate (
    key           text PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    hits          integer NOT NULL CHECK (hits >= 0)
);
-- (The all-applications list uses jobs_job_created, made by migration 0011.)
