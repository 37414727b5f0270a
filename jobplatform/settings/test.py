"""Test settings: real PostgreSQL (DATABASE_URL, else the embedded server)."""

from .base import *  # noqa: F403
from .base import DATABASES, env, local_database

DEBUG = False
SECRET_KEY = env("SECRET_KEY", "test-only-insecure-key")
ALLOWED_HOSTS = ["*"]

DATABASES = DATABASES or local_database()
