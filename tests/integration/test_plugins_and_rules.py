"""Adding job types (a module, an installed distribution) and the no-ORM rule."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import manage_shell

ROOT = Path(__file__).resolve().parents[2]

LIST_TYPES = "from jobs.registry import registry; print(','.join(registry.names()))"


def _shell(code: str, env_extra: dict[str, str] | None = None) -> str:
    """Run code in a fresh ``manage.py shell`` (a new process: discovery runs anew); its last line."""
    result = manage_shell(code, env_extra)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def _registered_types(env_extra: dict[str, str] | None = None) -> list[str]:
    return _shell(LIST_TYPES, env_extra).split(",")


def _registered_types_with_jobtypes_folder(folder: Path) -> list[str]:
    """The registered types of a fresh process in which ``folder`` is one more directory of
    the ``jobs.jobtypes`` package: a module there is discovered exactly as a file dropped
    into jobs/jobtypes/ would be (both are on the package's ``__path__``), without a test
    writing into the source tree."""
    code = textwrap.dedent(
        f"""
        import jobs.jobtypes
        jobs.jobtypes.__path__.append({str(folder)!r})
        import django
        django.setup()
        {LIST_TYPES}
        """
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "jobplatform.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1].split(",")


def test_a_new_module_in_jobs_jobtypes_is_a_new_type(tmp_path):
    (tmp_path / "zz_test_added_type.py").write_text(
        textwrap.dedent(
            '''
            from jobs.registry import JobType, registry

            @registry.register
            class Added(JobType):
                """Added by one module."""
                name = "zz_added"
                def run(self, ctx, params):
                    return 1
            '''
        )
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "zz_added" in _registered_types_with_jobtypes_folder(tmp_path)
    assert "zz_added" not in _registered_types_with_jobtypes_folder(empty)


def docs_example() -> str:
    """The first Python block of docs/job-types.md's "Adding a job type" section."""
    page = (ROOT / "docs" / "job-types.md").read_text()
    section = page[page.index("## Adding a job type") :]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_documented_job_type_example_is_discovered_and_works(tmp_path):
    """The example, as the ``jobtypes`` module of an app of its own (EXTRA_INSTALLED_APPS)."""
    app = tmp_path / "docs_example_app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "jobtypes.py").write_text(docs_example())
    code = textwrap.dedent(
        """
        import uuid
        from jobs.runtime.context import JobContext
        from jobs.registry import registry

        job_type = registry.get("count_primes")
        ctx = JobContext(
            job_id=uuid.uuid4(), attempt=1, job_type="count_primes", metadata={"tag": "x"},
            report=lambda *args: False,
        )
        print(job_type().run(ctx, job_type.validate_params({"below": 1000000})))
        """
    )
    env = {"EXTRA_INSTALLED_APPS": "docs_example_app", "PYTHONPATH": str(tmp_path)}
    assert _shell(code, env) == "{'below': 1000000, 'primes': 78498, 'tag': 'x'}"


def test_a_pip_installed_distribution_adds_a_type_through_its_entry_point(tmp_path):
    target = tmp_path / "site"
    source = tmp_path / "sample_plugin"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(ROOT / "tests" / "fixtures" / "sample_plugin", source)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert list(target.glob("jobplatform_sample_plugin-1.0.0.dist-info/entry_points.txt"))
    assert "reverse_text" not in _registered_types()
    assert "reverse_text" in _registered_types({"PYTHONPATH": str(target)})


ORM_MARKERS = ("models.Model", ".objects.", "QuerySet", "Manager(")


def test_no_orm_models_or_queries_in_project_code():
    """Project data goes through jobs/db.py and SQL only: no ORM model or query anywhere."""
    offenders = []
    for folder in ("jobs", "jobplatform"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    for base in node.bases:
                        if ast.unparse(base).endswith("Model"):
                            offenders.append(f"{path}:{node.lineno} class {node.name}({ast.unparse(base)})")
                if isinstance(node, ast.Attribute) and node.attr == "objects":
                    offenders.append(f"{path}:{node.lineno} .objects")
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("django.db.models"):
                    offenders.append(f"{path}:{node.lineno} import from {node.module}")
    assert offenders == []
    assert not (ROOT / "jobs" / "models.py").exists()


def test_cursor_is_owned_by_one_module():
    users = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "jobs").rglob("*.py")
        if ".cursor(" in path.read_text() and "migrations" not in path.parts
    ]
    assert users == ["jobs/db.py"]
