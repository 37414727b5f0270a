"""django-q2 hooks: each cluster worker process runs the maintenance thread."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver
from django_q.signals import post_spawn

from . import maintenance


@receiver(post_spawn)
def start_maintenance(sender: Any, proc_name: str, **kwargs: Any) -> None:
    maintenance.start_background()
