"""Log settings take effect, and one event is one log line."""

from __future__ import annotations

import pytest

from tests.conftest import manage_shell

LEVEL = "import logging; print(logging.getLevelName(logging.getLogger('django-q').getEffectiveLevel()))"


@pytest.mark.parametrize(("setting", "level"), [(None, "WARNING"), ("DEBUG", "DEBUG"), ("ERROR", "ERROR")])
def test_q_log_level_sets_the_logger_django_q2_really_uses(setting, level):
    result = manage_shell(LEVEL, {"Q_LOG_LEVEL": setting} if setting else {"Q_LOG_LEVEL": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == level


@pytest.mark.parametrize("settings_module", ["jobplatform.settings.dev", "jobplatform.settings.test"])
def test_a_4xx_is_logged_once_and_a_401_not_at_all(settings_module):
    """django.request's warning per 4xx stays (once), except for 401s: those are counted
    in the metrics (jobplatform_http_auth_failures_total), not logged line by line."""
    code = (
        "from django.test import Client; c = Client(); "
        "print(c.get('/no/such/page').status_code, c.get('/jobs').status_code)"
    )
    # DEBUG on: Django's own console handler is live then, the case that logged twice.
    result = manage_shell(code, {"DJANGO_SETTINGS_MODULE": settings_module, "DEBUG": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "404 401"
    assert result.stderr.count("Not Found: /no/such/page") == 1, result.stderr
    assert "Unauthorized" not in result.stderr, result.stderr


FORMATTER = "import logging; print(type(logging.getLogger().handlers[0].formatter).__name__)"


@pytest.mark.parametrize(
    ("settings_module", "log_format", "formatter"),
    [
        ("jobplatform.settings.production", None, "JsonFormatter"),
        ("jobplatform.settings.production", "plain", "Formatter"),
        ("jobplatform.settings.dev", None, "Formatter"),
        ("jobplatform.settings.dev", "json", "JsonFormatter"),
        ("jobplatform.settings.test", None, "Formatter"),
    ],
)
def test_log_format_json_in_production_plain_elsewhere(settings_module, log_format, formatter):
    env = {"DJANGO_SETTINGS_MODULE": settings_module, "SECRET_KEY": "log-format-test", "LOG_FORMAT": log_format or ""}
    result = manage_shell(FORMATTER, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == formatter


def test_an_unknown_log_format_is_refused():
    result = manage_shell("from django.conf import settings; print(settings.LOGGING)", {"LOG_FORMAT": "xml"})
    assert result.returncode != 0
    assert "LOG_FORMAT must be json or plain" in result.stderr


def test_scripts_starts_settings_answer_an_unknown_url_with_problem_json():
    code = "from django.test import Client; r = Client().get('/no/such/page'); print(r.status_code, r['Content-Type'])"
    result = manage_shell(code, {"DJANGO_SETTINGS_MODULE": "jobplatform.settings.dev", "DEBUG": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "404 application/problem+json"
