-- Browser sessions of the browsable API, kept on the server so that log-out and token
-- revocation end them (a signed cookie stays valid until it expires, whatever the server
-- does). Rows are never deleted: a session ends by its ended_at, or by its expires_at.
CREATE TABLE jobs_session (
    -- sha256 of the session key the cookie carries; the key itself is never stored.
    key_hash    text PRIMARY KEY,
    -- the token the browser logged in with (null until it logs in).
    token_id    uuid REFERENCES jobs_token (id),
    -- Django's encoded session (signed with SECRET_KEY).
    data        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    -- set by log-out and by revoking the token; an ended session never comes back.
    ended_at    timestamptz
);
CREATE INDEX jobs_session_live_by_token ON jobs_session (token_id) WHERE ended_at IS NULL;
