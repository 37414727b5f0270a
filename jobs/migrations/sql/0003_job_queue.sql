-- Named queues: each job waits on one queue, served by the clusters started for it.
ALTER TABLE jobs_job ADD COLUMN queue text NOT NULL DEFAULT 'default'
    CHECK (queue ~ '^[a-z0-9][a-z0-9_-]{0,49}$');
