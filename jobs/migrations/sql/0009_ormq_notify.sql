-- Wake idle clusters at once: every statement that writes due envelopes into
-- django-q2's broker table sends a NOTIFY on the channel of each cluster key it wrote
-- (delivered at commit, so never before the envelope is visible). The cluster's broker
-- (jobs/broker.py) LISTENs on its own key's channel and still polls, so a lost
-- notification only delays a pickup by one poll interval.

-- The channel of a cluster key. Channel names are identifiers (at most 63 bytes) and
-- keys may be up to 100 characters, so the key is hashed. The broker asks this very
-- function for its channel name: one definition.
CREATE FUNCTION jobs_ormq_channel(key text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT 'django_q_ormq_' || md5(key) $$;

-- One notification per key per statement (and PostgreSQL folds identical ones within a
-- transaction). Envelopes due later (a run_at, a retry backoff) wake nobody now: the poll
-- finds them when they are due. The second of slack covers a client clock slightly ahead
-- of the server's (django-q2's own enqueue stamps lock with the client's clock).
CREATE FUNCTION jobs_ormq_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify(jobs_ormq_channel(due.key), '')
    FROM (SELECT DISTINCT key FROM inserted WHERE lock <= now() + interval '1 second') AS due;
    RETURN NULL;
END
$$;

CREATE TRIGGER django_q_ormq_notify
    AFTER INSERT ON django_q_ormq
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_ormq_notify();
