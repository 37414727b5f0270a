-- Idempotency-Key support: a client may retry POST /jobs safely with the same key.
ALTER TABLE jobs_job ADD COLUMN idempotency_key text;
ALTER TABLE jobs_job ADD COLUMN request_hash text;
CREATE UNIQUE INDEX jobs_job_idempotency ON jobs_job (app_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
