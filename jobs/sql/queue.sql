-- envelope_insert --
-- Put a delivery envelope in django-q2's database broker table, invisible to
-- clusters until now() + delay seconds. Runs in the caller's transaction.
INSERT INTO django_q_ormq (key, payload, lock)
VALUES (%(key)s, %(payload)s, now() + make_interval(secs => %(delay)s))
RETURNING id;
