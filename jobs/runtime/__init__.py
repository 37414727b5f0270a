"""What runs inside a cluster: the worker that executes a job (``worker``, with its
``heartbeats`` and the ``context`` a job type sees), the broker that wakes clusters
(``broker``), the maintenance services (``maintenance``: rescue, redeliver, promote) and
the callback deliverer (``callbacks``), all on the common loop of ``loop``."""
