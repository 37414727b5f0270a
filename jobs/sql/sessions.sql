-- The sessions table: the browsable API's browser sessions (jobs/sessions.py).

-- session_get_live --
-- A session's data, while it is neither ended nor expired.
SELECT data
FROM jobs_session
WHERE key_hash = %(key_hash)s AND ended_at IS NULL AND expires_at > now();

-- session_exists --
-- Whether a session key was ever used (ended or not: a key is never handed out twice).
SELECT 1 AS found
FROM jobs_session
WHERE key_hash = %(key_hash)s;

-- session_create --
-- Store a new session; no row back means the key is taken.
INSERT INTO jobs_session (key_hash, token_id, data, expires_at)
VALUES (%(key_hash)s, %(token_id)s, %(data)s, %(expires_at)s)
ON CONFLICT (key_hash) DO NOTHING
RETURNING key_hash;

-- session_save --
-- Update a live session; no row back means it ended (or expired) meanwhile.
UPDATE jobs_session
SET token_id = %(token_id)s, data = %(data)s, expires_at = %(expires_at)s
WHERE key_hash = %(key_hash)s AND ended_at IS NULL AND expires_at > now()
RETURNING key_hash;

-- session_end --
-- End a session (log-out); it is kept, never deleted.
UPDATE jobs_session SET ended_at = now()
WHERE key_hash = %(key_hash)s AND ended_at IS NULL
RETURNING key_hash;

-- session_end_for_token --
-- End every live session logged in with a token (the token was revoked).
UPDATE jobs_session SET ended_at = now()
WHERE token_id = %(token_id)s AND ended_at IS NULL
RETURNING key_hash;
