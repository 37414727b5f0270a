"""Root URLs: the API at the top level, the browsable API's log-in under /api-auth/, the
operators' dashboard under /dashboard/, the OpenAPI document and its viewers at /schema,
/docs and /redoc."""

from django.urls import include, path
from django.views.generic import RedirectView

from jobs.api.docs import RedocApi, SchemaApi, SwaggerApi

urlpatterns = [
    path("api-auth/", include("jobs.api.login_urls")),
    path("dashboard", RedirectView.as_view(url="/dashboard/")),
    path("dashboard/", include("jobs.dashboard.urls")),
    path("schema", SchemaApi.as_view(), name="schema"),
    path("docs", SwaggerApi.as_view(), name="docs"),
    path("redoc", RedocApi.as_view(), name="redoc"),
    path("", include("jobs.api.urls")),
]

handler400 = "jobs.api.errors.handler400"
handler403 = "jobs.api.errors.handler403"
handler404 = "jobs.api.errors.handler404"
handler500 = "jobs.api.errors.handler500"
