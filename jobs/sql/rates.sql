-- The rate table: fixed-window counters shared by every web worker on every host
-- (jobs.services.ratelimit). A key's window starts at its first hit and lasts %(window)s
-- seconds; a hit after it ends starts a new window at 1. "reset" is the number of whole
-- seconds until the window ends (at least 1).

-- _rate_live --
-- Fragment (an expression): the window of the counter r is still running.
r.window_start > now() - make_interval(secs => %(window)s)

-- _rate_reset --
-- Fragment (an expression): whole seconds until the window of the counter r ends.
greatest(1, ceil(extract(epoch FROM r.window_start + make_interval(secs => %(window)s) - now())))::int

-- _rate_count --
-- Fragment (the end of an INSERT INTO jobs_rate AS r): count one hit against the key, in
-- its running window or a new one; returns the hits and the reset.
ON CONFLICT (key) DO UPDATE
SET hits = CASE WHEN /* include _rate_live */ THEN r.hits + 1 ELSE 1 END,
    window_start = CASE WHEN /* include _rate_live */ THEN r.window_start ELSE now() END
RETURNING hits, /* include _rate_reset */ AS reset

-- rate_hit --
-- Count one hit against a key in one round trip (atomic across workers and hosts).
INSERT INTO jobs_rate AS r (key, window_start, hits)
VALUES (%(key)s, now(), 1)
/* include _rate_count */;

-- rate_charge --
-- Count %(n)s more hits against a key, only when they fit under %(limit)s in its running
-- window; a window that ended (or none yet) starts again with %(total)s, the request's own
-- hit included. No row when they do not fit (nothing counted).
INSERT INTO jobs_rate AS r (key, window_start, hits)
SELECT %(key)s, now(), %(total)s WHERE %(total)s <= %(limit)s
ON CONFLICT (key) DO UPDATE
SET hits = CASE WHEN /* include _rate_live */ THEN r.hits + %(n)s ELSE %(total)s END,
    window_start = CASE WHEN /* include _rate_live */ THEN r.window_start ELSE now() END
WHERE CASE WHEN /* include _rate_live */ THEN r.hits + %(n)s ELSE %(total)s END <= %(limit)s
RETURNING hits, /* include _rate_reset */ AS reset;

-- rate_get --
-- A key's hits in its current window, without counting one (no row: none).
SELECT hits, /* include _rate_reset */ AS reset
FROM jobs_rate r
WHERE key = %(key)s AND /* include _rate_live */;

-- rate_token_authenticate --
-- The API's authentication in one round trip: the live token with this hash (its
-- application and scopes; no token columns when unknown or revoked), one hit counted
-- against the token's window when %(count_token)s, and the failed attempts counted
-- against the client's address (%(address_key)s; NULL columns when none in its window).
WITH token AS (
    SELECT t.id AS token_id, t.scopes, a.id AS app_id, a.name AS app_name
    FROM jobs_token t
    JOIN jobs_app a ON a.id = t.app_id
    WHERE t.token_hash = %(token_hash)s AND t.revoked_at IS NULL
), hit AS (
    INSERT INTO jobs_rate AS r (key, window_start, hits)
    SELECT 'token:' || token.token_id, now(), 1 FROM token WHERE %(count_token)s
    /* include _rate_count */
), failures AS (
    SELECT hits, /* include _rate_reset */ AS reset
    FROM jobs_rate r
    WHERE key = %(address_key)s AND /* include _rate_live */
)
SELECT token.token_id, token.scopes, token.app_id, token.app_name,
       hit.hits AS token_hits, hit.reset AS token_reset,
       failures.hits AS failed_hits, failures.reset AS failed_reset
FROM (VALUES (1)) AS one (n)
LEFT JOIN token ON true
LEFT JOIN hit ON true
LEFT JOIN failures ON true;
