"""The fast path for what nearly every request is: JSON in, JSON out.

DRF's content negotiation parses the Accept header against every renderer and its
JSONRenderer runs the standard library's encoder; for an API client that accepts JSON
(no Accept, ``*/*`` or ``application/json``) both are skipped for a direct choice and
orjson, which encodes the same JSON several times faster. Anything else (a browser
asking for HTML, ``?format=``) takes DRF's normal path.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer

from .parsers import unsupported

_PLAIN_JSON_ACCEPTS = frozenset({"", "*/*", "application/json"})


class FastJSONRenderer(JSONRenderer):
    """Compact UTF-8 JSON, as DRF's JSONRenderer writes it, encoded by orjson."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        try:
            return orjson.dumps(data)
        except (orjson.JSONEncodeError, TypeError):
            # Integers beyond 64 bits (valid JSON, kept by jsonb) and anything orjson
            # does not know: the standard encoder, as DRF would.
            return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class FastContentNegotiation(DefaultContentNegotiation):
    def select_parser(self, request: Any, parsers: list[BaseParser]) -> BaseParser:
        """The parser for the body's Content-Type; none: 415 saying to send JSON."""
        parser = super().select_parser(request, parsers)
        if parser is None:
            raise unsupported(request.content_type or "")
        return parser

    def select_renderer(
        self, request: Any, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        if not format_suffix and request.META.get("HTTP_ACCEPT", "").strip() in _PLAIN_JSON_ACCEPTS:
            if "format" not in request.query_params:
                first = renderers[0]
                if isinstance(first, FastJSONRenderer):
                    return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
