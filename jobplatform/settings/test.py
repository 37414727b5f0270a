"""Test settings: real PostgreSQL (DATABASE_URL, else the embedded server)."""

from .base import *  # noqa: F403
from .base import DATABASES, JOBS, database_config, env

DEBUG = False
SECRET_KEY = env("SECRET_KEY", "test-only-insecure-key")
ALLOWED_HOSTS = ["*"]

if not DATABASES:
    from jobplatform.embedded import database_url

    DATABASES = {"default": database_config(database_url())}

JOBS = {**JOBS}
