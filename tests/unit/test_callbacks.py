"""What a receiver checks (``jobs.services.callbacks.verify``) and which hosts may receive."""

from __future__ import annotations

import pytest

from jobs.services import callbacks

SECRET = "s3cret"
BODY = b'{"id":"x","status":"succeeded"}'
NOW = 1_800_000_000


def test_a_fresh_signature_verifies_and_only_for_its_body_and_secret():
    header = callbacks.signature(SECRET, NOW, BODY)
    assert callbacks.verify(SECRET, header, BODY, now=NOW)
    assert not callbacks.verify("other", header, BODY, now=NOW)
    assert not callbacks.verify(SECRET, header, BODY + b" ", now=NOW)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=soon,v1=abc", "garbage", "t=1800000000"])
def test_a_malformed_header_does_not_verify(header):
    assert not callbacks.verify(SECRET, header, BODY, now=NOW)


def test_an_old_or_future_timestamp_does_not_verify_replays():
    header = callbacks.signature(SECRET, NOW, BODY)
    assert callbacks.verify(SECRET, header, BODY, tolerance=300, now=NOW + 300)  # the edge still counts
    assert not callbacks.verify(SECRET, header, BODY, tolerance=300, now=NOW + 301)
    assert not callbacks.verify(SECRET, header, BODY, tolerance=300, now=NOW - 301)
    # The default, as docs/api.md's receiver shows it: five minutes either way.
    assert callbacks.verify(SECRET, header, BODY, now=NOW - 300)
    assert not callbacks.verify(SECRET, header, BODY, now=NOW + 301)


def test_an_entry_that_is_not_a_host_does_not_hide_the_entries_after_it():
    assert callbacks.host_allowed("hooks.example.com", 443, ["[not a host", "hooks.example.com"])
    assert not callbacks.host_allowed("hooks.example.com", 443, ["[not a host"])


def test_the_allowed_hosts_are_matched_without_case(settings):
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["hooks.example.com"]
    assert callbacks.url_problem("https://Hooks.Example.COM/job-done") is None
    assert callbacks.url_problem("https://hooks.example.com.evil.test/job-done") is not None


def test_without_the_setting_no_host_is_allowed(settings):
    del settings.JOBS_CALLBACK_ALLOWED_HOSTS
    assert callbacks.url_problem("https://hooks.example.com/job-done") is not None
