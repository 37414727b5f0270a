"""Every setting is defined once and documented where users read it: the README's
tables are checked against the code, so neither can drift."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from jobs.conf import TUNABLES, jobs_from_environment, markdown_table

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_readme_tunables_table_is_the_one_the_code_defines():
    block = re.search(r"<!-- tunables:start -->\n(.*?)\n<!-- tunables:end -->", README, re.S)
    assert block, "README.md lost its tunables table markers"
    assert block.group(1) == markdown_table(), "run `python -m jobs.conf` and paste its table into README.md"


def environment_variables_read_by_settings() -> set[str]:
    """Names passed to env()/env_int()/env_bool()/env_float() or os.environ in settings."""
    names: set[str] = set()
    for path in [*(ROOT / "jobplatform" / "settings").glob("*.py"), ROOT / "jobplatform" / "embedded.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if called in {"env", "env_int", "env_bool", "env_float", "get"} and isinstance(node.args[0].value, str):
                    if re.fullmatch(r"[A-Z][A-Z0-9_]+", node.args[0].value):
                        names.add(node.args[0].value)
    return names


def test_every_environment_variable_the_settings_read_is_in_the_readme():
    configuration = README[README.index("## Configuration") : README.index("### Worker tuning")]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", configuration))
    read = environment_variables_read_by_settings() | {t.env for t in TUNABLES}
    assert read - {"XDG_RUNTIME_DIR"} <= documented, sorted(read - documented)
    assert "Q_WORKERS" in read and "JOBS_LEASE_SECONDS" in read  # the scan itself works


def test_each_tunable_reads_its_environment_variable_with_its_type():
    values = jobs_from_environment({"JOBS_LEASE_SECONDS": "12.5", "JOBS_PAGE_SIZE": "7"})
    assert values["LEASE_SECONDS"] == 12.5 and values["PAGE_SIZE"] == 7
    assert values["MAX_TIMEOUT"] == 7200  # the default
    with pytest.raises(ImproperlyConfigured, match="JOBS_PAGE_SIZE must be an integer"):
        jobs_from_environment({"JOBS_PAGE_SIZE": "many"})


def test_every_platform_error_type_is_explained_in_the_readme():
    from jobs.exceptions import ERROR_TYPES

    rows = dict(re.findall(r"^\| `(\w+)` \| (.+?) \|", README, re.M))
    assert set(ERROR_TYPES) <= set(rows), sorted(set(ERROR_TYPES) - set(rows))
    assert {"WorkerLost", "JobTimeout", "InvalidResult", "InvalidParams", "UnknownJobType"} <= set(ERROR_TYPES)
