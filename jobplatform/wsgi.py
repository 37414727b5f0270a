"""WSGI entry point for gunicorn: ``gunicorn jobplatform.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobplatform.settings.production")

application = get_wsgi_application()
