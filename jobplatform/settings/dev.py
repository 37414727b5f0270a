"""Local development: DEBUG on, embedded PostgreSQL when DATABASE_URL is not set."""

from .base import *  # noqa: F403
from .base import DATABASES, env, env_bool, local_database

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env("SECRET_KEY", "dev-only-insecure-key-change-me")
ALLOWED_HOSTS = ["*"]

DATABASES = DATABASES or local_database()
