-- The tokens table: application tokens (only their hash is stored).

-- token_create --
-- Store the hash of a newly issued token for an application, with its scopes (comma-separated).
INSERT INTO jobs_token (app_id, token_hash, prefix, scopes)
VALUES (%(app_id)s, %(token_hash)s, %(prefix)s, string_to_array(%(scopes)s, ','))
RETURNING id, app_id, prefix, created_at, revoked_at, scopes;

-- token_authenticate --
-- The live (not revoked) token with this hash, with its application.
SELECT t.id AS token_id, t.scopes, a.id AS app_id, a.name AS app_name
FROM jobs_token t
JOIN jobs_app a ON a.id = t.app_id
WHERE t.token_hash = %(token_hash)s AND t.revoked_at IS NULL;

-- token_get_live --
-- A live token by id (the browsable API's session keeps only the token id).
SELECT t.id AS token_id, t.scopes, a.id AS app_id, a.name AS app_name
FROM jobs_token t
JOIN jobs_app a ON a.id = t.app_id
WHERE t.id = %(token_id)s AND t.revoked_at IS NULL;

-- token_list --
-- Every token with its application, newest first.
SELECT t.id, t.prefix, t.created_at, t.revoked_at, t.scopes, a.name AS app_name
FROM jobs_token t
JOIN jobs_app a ON a.id = t.app_id
ORDER BY t.created_at DESC, t.id;

-- token_find --
-- Tokens whose id or prefix is the given text.
SELECT t.id, t.prefix, t.created_at, t.revoked_at, t.scopes, a.name AS app_name
FROM jobs_token t
JOIN jobs_app a ON a.id = t.app_id
WHERE t.id::text = %(ref)s OR t.prefix = %(ref)s;

-- token_revoke --
-- Revoke a token; no row back means it was already revoked.
UPDATE jobs_token SET revoked_at = now()
WHERE id = %(token_id)s AND revoked_at IS NULL
RETURNING id, prefix, created_at, revoked_at, scopes;
