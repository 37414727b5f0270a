"""The browsable API's renderer, fit for the pages' Content-Security-Policy."""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import BrowsableAPIRenderer as DRFBrowsableAPIRenderer


class BrowsableAPIRenderer(DRFBrowsableAPIRenderer):
    """DRF's, with nothing the pages' ``CONTENT_SECURITY_POLICY`` refuses:

    - its log-out link's inline ``onclick`` becomes a plain form button (``jobs/api.html``);
    - no inline ``<style>`` of Pygments colours (DRF adds it whenever Pygments is
      installed; the colours serve Markdown view descriptions, which need the
      ``markdown`` package, not installed)."""

    template = "jobs/api.html"

    def get_context(self, data: Any, accepted_media_type: str | None, renderer_context: dict[str, Any]) -> dict:
        context = super().get_context(data, accepted_media_type, renderer_context)
        context["code_style"] = None
        return context
