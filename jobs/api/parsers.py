"""Request parsing: JSON only, bounded in size and depth."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from jobs.conf import settings

from .errors import PayloadTooLarge


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.MAX_BODY_BYTES
        if stream is not None and hasattr(stream, "read"):
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise PayloadTooLarge()
            stream = BytesIO(body)
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
