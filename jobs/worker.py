"""The task path that envelopes written before the ``jobs.runtime`` package name.

django-q2 stores the dotted path of its task inside each signed envelope. Envelopes
queued by an earlier version of the platform say ``jobs.worker.execute_job``; this keeps
them runnable after an upgrade (new envelopes name ``jobs.runtime.worker.execute_job``).
"""

from jobs.runtime.worker import execute_job

__all__ = ["execute_job"]
