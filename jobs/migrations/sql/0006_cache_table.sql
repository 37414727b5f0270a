-- Django's database cache table, exactly as `manage.py createcachetable` makes it for
-- LOCATION "django_cache". django-q2 shares its cluster status through it (qinfo,
-- qmonitor, qmemory, jobs_top, /ready). It is Django's cache, not project data.
CREATE TABLE "django_cache" (
    "cache_key" varchar(255) NOT NULL PRIMARY KEY,
    "value" text NOT NULL,
    "expires" timestamp with time zone NOT NULL
);
CREATE INDEX "django_cache_expires" ON "django_cache" ("expires");
