-- The rate table: fixed-window counters shared by every web worker on every host
-- (jobs/ratelimit.py). A key's window starts at its first hit and lasts %(window)s
-- seconds; a hit after it ends starts a new window at 1. "reset" is the number of whole
-- seconds until the window ends (at least 1).

-- rate_hit --
-- Count one hit against a key in one round trip (atomic across workers and hosts).
INSERT INTO jobs_rate AS r (key, window_start, hits)
VALUES (%(key)s, now(), 1)
ON CONFLICT (key) DO UPDATE
SET hits = CASE WHEN r.window_start > now() - make_interval(secs => %(window)s) THEN r.hits + 1 ELSE 1 END,
    window_start = CASE WHEN r.window_start > now() - make_interval(secs => %(window)s)
                        THEN r.window_start ELSE now() END
RETURNING hits,
          greatest(1, ceil(extract(epoch FROM r.window_start + make_interval(secs => %(window)s) - now())))::int
              AS reset;

-- rate_get --
-- A key's hits in its current window, without counting one (no row: none).
SELECT hits,
       greatest(1, ceil(extract(epoch FROM window_start + make_interval(secs => %(window)s) - now())))::int
           AS reset
FROM jobs_rate
WHERE key = %(key)s AND window_start > now() - make_interval(secs => %(window)s);

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
    ON CONFLICT (key) DO UPDATE
    SET hits = CASE WHEN r.window_start > now() - make_interval(secs => %(window)s) THEN r.hits + 1 ELSE 1 END,
        window_start = CASE WHEN r.window_start > now() - make_interval(secs => %(window)s)
                            THEN r.window_start ELSE now() END
    RETURNING hits,
              greatest(1, ceil(extract(epoch FROM r.window_start + make_interval(secs => %(window)s) - now())))::int
                  AS reset
), failures AS (
    SELECT hits,
           greatest(1, ceil(extract(epoch FROM window_start + make_interval(secs => %(window)s) - now())))::int
               AS reset
    FROM jobs_rate
    WHERE key = %(address_key)s AND window_start > now() - make_interval(secs => %(window)s)
)
SELECT token.token_id, token.scopes, token.app_id, token.app_name,
       hit.hits AS token_hits, hit.reset AS token_reset,
       failures.hits AS failed_hits, failures.reset AS failed_reset
FROM (VALUES (1)) AS one (n)
LEFT JOIN token ON true
LEFT JOIN hit ON true
LEFT JOIN failures ON true;
