"""The dashboard's pages, under /dashboard/."""

from django.urls import path

from . import batches, joblog, schedules, views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/<str:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<str:job_id>/logs", joblog.job_logs, name="job-logs"),
    path("batches/", batches.batch_list, name="batch-list"),
    path("batches/<str:batch_id>/", batches.batch_detail, name="batch-detail"),
    path("schedules/", schedules.schedule_list, name="schedule-list"),
]
