"""API routes. Paths take no trailing slash; the singular /job forms answer too."""

from django.urls import path

from . import batches, schedules, views
from .joblog import JobLogsApi
from .metrics import MetricsApi
from .rerun import JobRerunApi

app_name = "jobs"

#: The job resources, each under /jobs (its name) and /job (its name + "-singular").
JOB_ROUTES = (
    ("", views.JobListCreateApi, "job-list"),
    ("/<str:job_id>", views.JobDetailApi, "job-detail"),
    ("/<str:job_id>/cancel", views.JobCancelApi, "job-cancel"),
    ("/<str:job_id>/events", views.JobEventsApi, "job-events"),
    ("/<str:job_id>/logs", JobLogsApi, "job-logs"),
    ("/<str:job_id>/rerun", JobRerunApi, "job-rerun"),
)

urlpatterns = [
    path("", views.RootApi.as_view(), name="root"),
    *(path(f"jobs{suffix}", view.as_view(), name=name) for suffix, view, name in JOB_ROUTES),
    *(path(f"job{suffix}", view.as_view(), name=f"{name}-singular") for suffix, view, name in JOB_ROUTES),
    path("batches", batches.BatchListCreateApi.as_view(), name="batch-list"),
    path("batches/<str:batch_id>", batches.BatchDetailApi.as_view(), name="batch-detail"),
    path("batches/<str:batch_id>/cancel", batches.BatchCancelApi.as_view(), name="batch-cancel"),
    path("batches/<str:batch_id>/events", batches.BatchEventsApi.as_view(), name="batch-events"),
    path("schedules", schedules.ScheduleListCreateApi.as_view(), name="schedule-list"),
    path("schedules/<str:schedule_id>", schedules.ScheduleDetailApi.as_view(), name="schedule-detail"),
    path("schedules/<str:schedule_id>/events", schedules.ScheduleEventsApi.as_view(), name="schedule-events"),
    path("job-types", views.JobTypesApi.as_view(), name="job-types"),
    path("health", views.HealthApi.as_view(), name="health"),
    path("ready", views.ReadyApi.as_view(), name="ready"),
    path("metrics", MetricsApi.as_view(), name="metrics"),
]
