"""django-q2's ``qmemory``, refusing to start when it would leave clusters out (see qmonitor)."""

from __future__ import annotations

from typing import Any

from django_q.management.commands.qmemory import Command as DjangoQMemoryCommand

from jobs import monitoring


class Command(DjangoQMemoryCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        monitoring.refuse_unreadable("qmemory")
        super().handle(*args, **options)
