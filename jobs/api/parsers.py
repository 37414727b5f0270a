"""Request parsing: UTF-8 JSON only, bounded in size and depth, each key named once."""

from __future__ import annotations

import re
from typing import Any

from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.utils import json

from jobs.conf import settings
from jobs.exceptions import InvalidInput

from .errors import PayloadTooLarge, cut


class _NamedTwice(dict):
    """A JSON object whose text named at least one key more than once (``duplicates``).

    Python's ``json`` keeps the last value of a repeated key, so
    ``{"type": "countdown", "type": "fibonacci"}`` would silently be a fibonacci job:
    the parser marks such objects, then refuses the document naming each repeated key."""

    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _NamedTwice(obj)
    seen: set[str] = set()
    marked.duplicates = []
    for key, _ in pairs:
        if key in seen and key not in marked.duplicates:
            marked.duplicates.append(key)
        seen.add(key)
    return marked


def duplicate_keys(document: Any) -> list[str]:
    """The dotted path of every key named twice in ``document`` (objects from this parser),
    in document order. Iterative, so a deeply nested document cannot exhaust the stack."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            if isinstance(value, _NamedTwice):
                found.extend(f"{path}.{key}" if path else key for key in value.duplicates)
            children = [(child, f"{path}.{key}" if path else key) for key, child in value.items()]
        elif isinstance(value, list):
            children = [(child, f"{path}[{index}]") for index, child in enumerate(value)]
        else:
            continue
        stack.extend(reversed([(c, p) for c, p in children if isinstance(c, (dict, list))]))
    return found


#: A JSON escape of a UTF-16 surrogate: only text with one can hold a lone surrogate
#: (valid UTF-8 cannot encode one), so only such bodies are searched.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _shown(text: str) -> str:
    """``text`` with every lone surrogate shown as U+FFFD (an error body must be encodable)."""
    return "".join("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in text)


def lone_surrogates(document: Any) -> list[str]:
    """The dotted path of every key or text holding a lone surrogate (``"\\ud800"``), which
    no UTF-8 text, PostgreSQL or an error body can hold. Iterative, like duplicate_keys."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if _shown(value) != value:
                found.append(path)
        elif isinstance(value, dict):
            for key, child in value.items():
                child_path = f"{path}.{_shown(key)}" if path else _shown(key)
                if _shown(key) != key:
                    found.append(child_path)
                stack.append((child, child_path))
        elif isinstance(value, list):
            stack.extend((child, f"{path}[{index}]") for index, child in enumerate(value))
    return found


def _charset(media_type: str | None) -> str | None:
    if not media_type:
        return None
    _, params = parse_header_parameters(media_type)
    return params.get("charset")


#: Most characters of a refused Content-Type a 415 echoes.
MEDIA_TYPE_ECHO = 60


def unsupported(media_type: str) -> UnsupportedMediaType:
    """The 415 for a body that is not sent as JSON: what to send instead (``curl -d``
    alone sends a form, ``application/x-www-form-urlencoded``)."""
    advice = "send the body as JSON with the header `Content-Type: application/json`."
    if not media_type.strip():
        return UnsupportedMediaType(media_type, detail=f"The request has no Content-Type: {advice}")
    shown = cut(media_type, MEDIA_TYPE_ECHO)
    return UnsupportedMediaType(media_type, detail=f"Unsupported media type {shown!r}: {advice}")


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        charset = _charset(media_type)
        if charset is not None and charset.strip().lower() != "utf-8":
            # Django would decode the body with the declared charset (latin-1 text stored
            # as mojibake); JSON is UTF-8 (RFC 8259), so anything else is refused.
            raise UnsupportedMediaType(
                media_type, detail=f"Only UTF-8 JSON is accepted, not charset={cut(charset, settings.ERROR_ECHO_MAX)}."
            )
        limit = settings.MAX_BODY_BYTES
        body = stream.read(limit + 1) if stream is not None and hasattr(stream, "read") else b""
        if len(body) > limit:
            raise PayloadTooLarge()
        try:
            text = body.decode("utf-8")
            found_twice = False

            def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
                nonlocal found_twice
                obj = _object(pairs)
                found_twice = found_twice or isinstance(obj, _NamedTwice)
                return obj

            document = json.loads(text, object_pairs_hook=hook)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
        except UnicodeDecodeError:
            raise ParseError("JSON parse error - the body is not valid UTF-8.") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _SURROGATE_ESCAPE.search(text) and (paths := lone_surrogates(document)):
            raise InvalidInput(
                {path: ["Text must be valid Unicode: a lone surrogate (\\ud800 to \\udfff) is not."] for path in paths},
                "The JSON body holds text that is not valid Unicode.",
            )
        if found_twice:
            paths = duplicate_keys(document)
            raise InvalidInput(
                {path: ["This key appears more than once in the JSON body; name each key once."] for path in paths},
                f"The JSON body names the key {cut(paths[0], settings.ERROR_ECHO_MAX)!r} more than once.",
            )
        return document
