"""The client address and the header fields, without a database."""

from __future__ import annotations

import pytest

from jobs.api.addresses import client_address
from jobs.services.ratelimit import Window


@pytest.mark.parametrize(
    ("meta", "trusted", "expected"),
    [
        ({"REMOTE_ADDR": "198.51.100.4"}, "127.0.0.1,::1", "198.51.100.4"),
        # A client talking to gunicorn directly cannot choose its address.
        ({"REMOTE_ADDR": "198.51.100.4", "HTTP_X_FORWARDED_FOR": "192.0.2.1"}, "127.0.0.1,::1", "198.51.100.4"),
        # From the proxy: the address the proxy appended (the last one).
        ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "192.0.2.9, 192.0.2.1"}, "127.0.0.1,::1", "192.0.2.1"),
        ({"REMOTE_ADDR": "172.20.0.3", "HTTP_X_FORWARDED_FOR": "192.0.2.1"}, "172.20.0.0/16", "192.0.2.1"),
        ({"REMOTE_ADDR": "172.20.0.3", "HTTP_X_FORWARDED_FOR": "192.0.2.1"}, "*", "192.0.2.1"),
        # A proxy that sent no usable address: the proxy's own.
        ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "garbage"}, "127.0.0.1", "127.0.0.1"),
        ({"REMOTE_ADDR": "127.0.0.1"}, "127.0.0.1", "127.0.0.1"),
        # IPv6 clients are counted per /64.
        ({"REMOTE_ADDR": "2001:db8:1:2:3:4:5:6"}, "127.0.0.1", "2001:db8:1:2::/64"),
        ({"REMOTE_ADDR": "::1", "HTTP_X_FORWARDED_FOR": "2001:db8::7"}, "127.0.0.1,::1", "2001:db8::/64"),
        ({}, "127.0.0.1", ""),
    ],
)
def test_client_address(settings, meta, trusted, expected):
    settings.JOBS_TRUSTED_PROXIES = trusted
    assert client_address(meta) == expected


def test_headers_follow_draft_10_syntax():
    window = Window("token", limit=100, window=60, hits=42, reset=17)
    assert window.headers() == {"RateLimit-Policy": '"token";q=100;w=60', "RateLimit": '"token";r=58;t=17'}
    over = Window("failed-auth", limit=5, window=60, hits=9, reset=3)
    assert over.headers()["RateLimit"] == '"failed-auth";r=0;t=3'
    assert over.refusal().retry_after == 3
