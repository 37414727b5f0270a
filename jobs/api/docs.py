"""The OpenAPI document and its viewers: /schema, /docs (Swagger UI), /redoc.

Swagger UI's and Redoc's files come from drf-spectacular-sidecar, served as static files
by this very server: the pages work without internet. The document itself is built by
jobs/api/schema.py.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.negotiation import BaseContentNegotiation


class PageOnly(BaseContentNegotiation):
    """A page for browsers: served whatever ``Accept`` says (a 406 from a page that has
    no other form could only be a plain-text body under a problem+json type)."""

    def select_parser(self, request: Any, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: list[Any], format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class SchemaApi(SpectacularAPIView):
    """The OpenAPI 3.1 document of this API: JSON unless YAML is asked for
    (`Accept: application/vnd.oai.openapi` or `?format=yaml`)."""

    renderer_classes = [*SpectacularAPIView.renderer_classes[2:], *SpectacularAPIView.renderer_classes[:2]]


class SwaggerApi(SpectacularSwaggerSplitView):
    """Swagger UI; its start-up script is a separate file (`?script`), no inline code."""

    url_name = "schema"
    content_negotiation_class = PageOnly


class RedocApi(SpectacularRedocView):
    """Redoc, without the web fonts its stock page loads from Google."""

    url_name = "schema"
    template_name = "jobs/redoc.html"
    content_negotiation_class = PageOnly
