-- The constraints added NOT VALID by 0018_batches.sql, checked without blocking writes
-- (VALIDATE CONSTRAINT takes a SHARE UPDATE EXCLUSIVE lock).
ALTER TABLE jobs_job VALIDATE CONSTRAINT jobs_job_batch_fk;
ALTER TABLE jobs_callback VALIDATE CONSTRAINT jobs_callback_batch_fk;
ALTER TABLE jobs_callback VALIDATE CONSTRAINT jobs_callback_one_subject;
