"""The OpenAPI document and its viewers: /schema, /docs (Swagger UI), /redoc.

Swagger UI's and Redoc's files come from drf-spectacular-sidecar, served as static files
by this very server: the pages work without internet. The document itself is built by
jobs/api/schema.py.
"""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView


class SchemaApi(SpectacularAPIView):
    """The OpenAPI 3.1 document of this API: JSON unless YAML is asked for
    (`Accept: application/vnd.oai.openapi` or `?format=yaml`)."""

    renderer_classes = [*SpectacularAPIView.renderer_classes[2:], *SpectacularAPIView.renderer_classes[:2]]


class SwaggerApi(SpectacularSwaggerSplitView):
    """Swagger UI; its start-up script is a separate file (`?script`), no inline code."""

    url_name = "schema"


class RedocApi(SpectacularRedocView):
    """Redoc, without the web fonts its stock page loads from Google."""

    url_name = "schema"
    template_name = "jobs/redoc.html"
