"""django-q2's ``qmonitor``, refusing to start when it would leave clusters out.

django-q2 skips, silently, every cluster status signed with another ``SECRET_KEY``: run
with the wrong key, its screen shows no cluster at all. This says so and exits instead
(``jobs.monitoring.refuse_unreadable``). The screen itself is django-q2's: its State is
django-q2's own (Idle while every worker runs a job it already took; jobs_top corrects it).
"""

from __future__ import annotations

from typing import Any

from django_q.management.commands.qmonitor import Command as DjangoQMonitorCommand

from jobs import monitoring


class Command(DjangoQMonitorCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        monitoring.refuse_unreadable("qmonitor")
        super().handle(*args, **options)
