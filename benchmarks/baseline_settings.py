"""Settings of the bare baseline: the production settings without DRF, the ``jobs``
app, middleware or the product's URLs. Served by the benchmark's second gunicorn and
used by its stock django-q2 cluster (no maintenance thread, stock ``qcluster``)."""

from jobplatform.settings.production import *  # noqa: F403

# django_q only: its broker table and its own qcluster command.
INSTALLED_APPS = ["django_q"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchmarks.baseline"
TEMPLATES: list[dict] = []
