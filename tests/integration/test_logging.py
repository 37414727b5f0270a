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
def test_a_4xx_is_logged_once(settings_module):
    code = "from django.test import Client; print(Client().get('/jobs').status_code)"
    result = manage_shell(code, {"DJANGO_SETTINGS_MODULE": settings_module})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "401"
    assert result.stderr.count("Unauthorized: /jobs") == 1, result.stderr
