-- The database itself (no table): is it there?

-- health_check --
-- The database answers.
SELECT 1 AS ok;
