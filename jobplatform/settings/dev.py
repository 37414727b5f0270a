"""Local development: embedded PostgreSQL when DATABASE_URL is not set. DEBUG stays off
unless asked for (DEBUG=1): with it, Django answers unknown URLs and errors with its own
HTML debug pages instead of the API's problem+json."""

from .base import *  # noqa: F403
from .base import DATABASES, env, env_bool, local_database

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY", "dev-only-insecure-key-change-me")
ALLOWED_HOSTS = ["*"]

DATABASES = DATABASES or local_database()
