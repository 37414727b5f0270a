-- queue_channel --
-- The NOTIFY channel of a django-q2 cluster key (jobs_ormq_channel, migration 0009).
SELECT jobs_ormq_channel(%(key)s) AS channel;

-- queue_listen --
-- Listen on a channel; {channel} is filled in as a quoted identifier (LISTEN takes no parameters).
LISTEN {channel};
