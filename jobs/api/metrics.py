"""``GET /metrics``: the Prometheus exposition, for an ``admin`` token or an allowed address."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.request import Request

from jobs import metrics
from jobs.conf import metrics_allow

from .base import AuthenticatedApi
from .rendering import FastJSONRenderer
from .schema import CHALLENGE, UNAVAILABLE, problems

#: Headers a proxy adds: a request carrying one came through a proxy, so its peer
#: address is the proxy's, not the client's, and proves nothing.
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def allowed_networks(raw: tuple[str, ...]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"JOBS_METRICS_ALLOW: {exc}") from exc


def address_allowed(request: Any) -> bool:
    """The peer is in ``JOBS_METRICS_ALLOW`` and the request did not come through a proxy."""
    if any(request.META.get(header) for header in PROXY_HEADERS):
        return False
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped:
        peer = peer.ipv4_mapped
    networks = allowed_networks(metrics_allow())
    return any(peer in network for network in networks)


class MetricsAccess(permissions.BasePermission):
    """An allowed address needs no token; otherwise the token must carry the ``admin`` scope.

    No token (or a bad one): 401. A token without ``admin``: 403."""

    message = "Reading metrics needs a token with the admin scope, or an address in JOBS_METRICS_ALLOW."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.user is not None and "admin" in getattr(request.user, "scopes", ()):
            return True
        return address_allowed(request._request)


class MetricsApi(AuthenticatedApi):
    """Prometheus metrics: jobs (from the database, at each scrape) and this server's HTTP requests."""

    name = "Metrics"

    permission_classes = [MetricsAccess]
    # Errors are problem+json whatever the client accepts (Prometheus asks for text).
    renderer_classes = [FastJSONRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        summary="Prometheus metrics",
        parameters=[CHALLENGE, UNAVAILABLE],
        responses={
            (200, "text/plain"): OpenApiResponse(
                {"type": "string"},
                description="The exposition (text format; OpenMetrics when asked). An `admin` token, or a "
                "direct request from an address in `JOBS_METRICS_ALLOW`.",
            ),
            **problems(401, 403, 503),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        body, content_type = metrics.exposition(request.META.get("HTTP_ACCEPT"))
        return HttpResponse(body, content_type=content_type)
