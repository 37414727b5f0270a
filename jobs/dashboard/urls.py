"""The dashboard's pages, under /dashboard/."""

from django.urls import path

from . import schedules, views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/<str:job_id>/", views.job_detail, name="job-detail"),
    path("schedules/", schedules.schedule_list, name="schedule-list"),
]
