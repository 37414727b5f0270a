"""Local development: DEBUG on, embedded PostgreSQL when DATABASE_URL is not set."""

from .base import *  # noqa: F403
from .base import DATABASES, database_config, env, env_bool

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env("SECRET_KEY", "dev-only-insecure-key-change-me")
ALLOWED_HOSTS = ["*"]

if not DATABASES:
    from jobplatform.embedded import database_url

    DATABASES = {"default": database_config(database_url())}
