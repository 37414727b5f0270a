"""API routes. Paths take no trailing slash; the singular /job forms answer too."""

from django.urls import path

from . import views
from .metrics import MetricsApi

app_name = "jobs"

urlpatterns = [
    path("", views.RootApi.as_view(), name="root"),
    path("jobs", views.JobListCreateApi.as_view(), name="job-list"),
    path("jobs/<str:job_id>", views.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<str:job_id>/cancel", views.JobCancelApi.as_view(), name="job-cancel"),
    path("jobs/<str:job_id>/events", views.JobEventsApi.as_view(), name="job-events"),
    path("job", views.JobListCreateApi.as_view(), name="job-list-singular"),
    path("job/<str:job_id>", views.JobDetailApi.as_view(), name="job-detail-singular"),
    path("job/<str:job_id>/cancel", views.JobCancelApi.as_view(), name="job-cancel-singular"),
    path("job/<str:job_id>/events", views.JobEventsApi.as_view(), name="job-events-singular"),
    path("job-types", views.JobTypesApi.as_view(), name="job-types"),
    path("health", views.HealthApi.as_view(), name="health"),
    path("ready", views.ReadyApi.as_view(), name="ready"),
    path("metrics", MetricsApi.as_view(), name="metrics"),
]
