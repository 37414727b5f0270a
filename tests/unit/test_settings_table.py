"""Every setting is defined once and documented where users read it: the tables of the
docs/ pages are checked against the code, so neither can drift."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from jobs.conf import TUNABLES, jobs_from_environment, markdown_table

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
API = (ROOT / "docs" / "api.md").read_text()


def section(page: str, heading: str) -> str:
    """The text of one ``## heading`` section of a page, up to the next ``## `` heading."""
    start = page.index(f"\n## {heading}\n")
    end = page.find("\n## ", start + 1)
    return page[start : end if end != -1 else len(page)]


def test_the_documented_tunables_table_is_the_one_the_code_defines():
    block = re.search(r"<!-- tunables:start -->\n(.*?)\n<!-- tunables:end -->", CONFIGURATION, re.S)
    assert block, "docs/configuration.md lost its tunables table markers"
    assert block.group(1) == markdown_table(), (
        "run `python -m jobs.conf` and paste its table into docs/configuration.md"
    )


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


def table_variables(text: str) -> set[str]:
    """The variables a table documents: the names in its rows' first cells."""
    first_cells = re.findall(r"^\| (.+?) \|", text, re.M)
    return {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}


def test_every_environment_variable_the_settings_read_is_documented():
    documented = table_variables(section(CONFIGURATION, "Environment variables"))
    documented |= table_variables(section(CONFIGURATION, "Tunables"))
    read = environment_variables_read_by_settings() | {t.env for t in TUNABLES}
    assert read - {"XDG_RUNTIME_DIR"} <= documented, sorted(read - documented)
    assert "Q_WORKERS" in read and "JOBS_LEASE_SECONDS" in read  # the scan itself works


def test_each_tunable_reads_its_environment_variable_with_its_type():
    values = jobs_from_environment({"JOBS_LEASE_SECONDS": "12.5", "JOBS_PAGE_SIZE": "7"})
    assert values["LEASE_SECONDS"] == 12.5 and values["PAGE_SIZE"] == 7
    assert values["MAX_TIMEOUT"] == 7200  # the default
    with pytest.raises(ImproperlyConfigured, match="JOBS_PAGE_SIZE must be an integer"):
        jobs_from_environment({"JOBS_PAGE_SIZE": "many"})


def test_every_platform_error_type_is_explained_in_the_docs():
    from jobs.exceptions import ERROR_TYPES

    rows = dict(re.findall(r"^\| `(\w+)` \| (.+?) \|", section(API, "The job resource"), re.M))
    assert set(ERROR_TYPES) <= set(rows), sorted(set(ERROR_TYPES) - set(rows))
    assert {"WorkerLost", "JobTimeout", "InvalidResult", "InvalidParams", "UnknownJobType"} <= set(ERROR_TYPES)
