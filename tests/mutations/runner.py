"""Run the mutations of ``catalog.py``: each on its own scratch copy of the tree, with only
its tests, which must fail. ``scripts/mutate`` is the way in (``--help``).

Before any mutation: every search text must occur exactly once (else the catalog has
rotted: stop and say where), and every listed test must pass on an unmutated copy (else a
"killed" would prove nothing). Then one line per mutation, a summary, and the exit status:
0 all killed, 1 some survived, 2 the check itself could not be trusted (a search text
missing, a baseline failure, a test that could not run).

Every run gets a fresh test database of the runner's own, named after DATABASE_URL's
database (``test_<name>_mutate``), created from the copy's migrations and dropped again by
pytest-django. Fresh, not reused: a mutation of the migrations' SQL needs its own schema,
and rows that transactional tests committed in an earlier run could fail a test that
expects an empty database, which would count as a kill that proves nothing (measured
here: about 0.3 s more per run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.mutations.catalog import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parents[2]
#: A safety net only: pytest-timeout (pyproject.toml) fails a hung test well before.
RUN_TIMEOUT = 900


class CatalogRotted(Exception):
    """A mutation no longer applies to the code as it is."""


def problems(mutations: Sequence[Mutation], root: Path = ROOT) -> list[str]:
    """Why each mutation cannot be applied to the tree at ``root`` (empty: all can)."""
    found: list[str] = []
    names = [m.name for m in mutations]
    found += [f"{name}: the name is used twice" for name in sorted({n for n in names if names.count(n) > 1})]
    for mutation in mutations:
        target = root / mutation.path
        if not target.is_file():
            found.append(f"{mutation.name}: {mutation.path} does not exist (moved? update its path)")
            continue
        count = target.read_text(encoding="utf-8").count(mutation.search)
        if count == 0:
            found.append(f"{mutation.name}: search text not found in {mutation.path}: {mutation.search!r}")
        elif count > 1:
            found.append(f"{mutation.name}: search text found {count} times in {mutation.path}; make it unique")
        if mutation.search == mutation.replace:
            found.append(f"{mutation.name}: the replacement changes nothing")
        if not mutation.tests:
            found.append(f"{mutation.name}: names no test")
        for test in mutation.tests:
            if not (root / test.split("::", 1)[0]).is_file():
                found.append(f"{mutation.name}: no test file for {test}")
    return found


def apply(mutation: Mutation, tree: Path) -> None:
    """Break the rule in the copy at ``tree`` (never in the source tree)."""
    target = tree / mutation.path
    text = target.read_text(encoding="utf-8")
    if text.count(mutation.search) != 1:
        raise CatalogRotted(f"{mutation.name}: search text not found exactly once in {mutation.path}")
    target.write_text(text.replace(mutation.search, mutation.replace), encoding="utf-8")


def tracked_files(root: Path = ROOT) -> list[str]:
    """The files git knows (and new ones it does not ignore), as they are on disk."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            check=True,
            capture_output=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"the mutation check copies the files git knows, and git could not list them: {exc}") from exc
    return [name for name in listing.split("\0") if name and (root / name).is_file()]


def scratch_copy(files: Iterable[str], root: Path = ROOT) -> Path:
    """A copy of ``files`` in a new temporary folder outside the source tree."""
    tree = Path(tempfile.mkdtemp(prefix="jobplatform-mutate-")).resolve()
    if tree.is_relative_to(root):
        shutil.rmtree(tree)
        raise SystemExit(f"the scratch folder {tree} is inside the source tree; set TMPDIR elsewhere")
    for name in files:
        destination = tree / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, destination)
    return tree


@dataclass
class Run:
    returncode: int | None  # None: timed out
    seconds: float
    output: str


def run_tests(tree: Path, tests: Sequence[str], *, database: str) -> Run:
    """pytest -x on ``tests`` in the copy at ``tree``, with this virtualenv's Python."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "jobplatform.settings.test",
        "TEST_DATABASE_NAME": database,
        # Only the copy's modules: nothing imported from the source tree by accident.
        "PYTHONPATH": str(tree),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    # Without the plugins no listed test needs, pytest starts in under a second instead of
    # three (schemathesis, Hypothesis and anyio import much; @given works without its plugin).
    plugins_off = ["-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:anyio"]
    command = [sys.executable, "-m", "pytest", "-x", "-q", *plugins_off, "--create-db", *tests]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, cwd=tree, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Run(None, time.monotonic() - started, output)
    return Run(done.returncode, time.monotonic() - started, done.stdout + done.stderr)


def verdict(returncode: int | None) -> str:
    """pytest's exit status as a verdict: 1 (tests failed) is a kill, 0 a survival. Any
    other status (a collection or import error, a node id not found, no test collected)
    or a timeout tells nothing about the mutation: an error of the check itself."""
    if returncode is None:
        return "TIMEOUT"
    return {0: "SURVIVED", 1: "killed"}.get(returncode, "ERROR")


def database_name() -> str:
    """The runner's own test database (never another run's or another checkout's)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        # The embedded server of the source tree (a copy would start its own, in the copy).
        from jobplatform.embedded import database_url

        url = os.environ["DATABASE_URL"] = database_url()
    name = urlsplit(url).path.lstrip("/") or "jobplatform"
    return f"test_{name}_mutate"


def caught_by(output: str) -> str:
    """The test that failed first, from pytest's short summary (``-ra``); a failure in a
    fixture's setup is marked, since a mutation that breaks setup may prove little."""
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            kind, _, rest = line.partition(" ")
            test = rest.split(" - ", 1)[0].rsplit("/", 1)[-1]
            return test + (" (in setup)" if kind == "ERROR" else "")
    return ""


def tail(output: str, lines: int = 40) -> str:
    return "\n".join("    " + line for line in output.rstrip().splitlines()[-lines:])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/mutate",
        description="Apply each named mutation to a scratch copy and run the tests that must catch it.",
    )
    parser.add_argument("names", nargs="*", help="run only these mutations (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and their tests, run nothing")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies (their paths are printed)")
    parser.add_argument("--verbose", "-v", action="store_true", help="print pytest's output for every run")
    args = parser.parse_args(argv)

    known = {m.name: m for m in MUTATIONS}
    unknown = [name for name in args.names if name not in known]
    if unknown:
        print(f"unknown mutation(s): {', '.join(unknown)}; see scripts/mutate --list", file=sys.stderr)
        return 2
    chosen = [known[name] for name in args.names] if args.names else list(MUTATIONS)
    if args.list:
        for m in chosen:
            print(f"{m.name}  ({m.path}): {m.rule}")
            for test in m.tests:
                print(f"    {test}")
        return 0

    rotted = problems(chosen)
    if rotted:
        print("The mutation catalog no longer matches the code (tests/mutations/catalog.py):", file=sys.stderr)
        for problem in rotted:
            print(f"  {problem}", file=sys.stderr)
        return 2

    database = database_name()
    files = tracked_files()
    started = time.monotonic()
    print(f"==> mutation check: {len(chosen)} mutation(s), tests on a fresh database {database} each", flush=True)

    def in_copy(mutation: Mutation | None, tests: Sequence[str]) -> Run:
        tree = scratch_copy(files)
        try:
            if mutation is not None:
                apply(mutation, tree)
            return run_tests(tree, tests, database=database)
        finally:
            if args.keep:
                print(f"    (kept {tree})")
            else:
                shutil.rmtree(tree, ignore_errors=True)

    # The baseline: every listed test passes on the unmutated code.
    baseline_tests = list(dict.fromkeys(test for m in chosen for test in m.tests))
    baseline = in_copy(None, baseline_tests)
    print(f"{'baseline':<9} {'passed' if baseline.returncode == 0 else 'FAILED':<40} {baseline.seconds:6.1f}s")
    if args.verbose or baseline.returncode != 0:
        print(tail(baseline.output, 400 if args.verbose else 40))
    if baseline.returncode != 0:
        print(
            "The listed tests do not all pass (or are not all found) without any mutation: "
            "fix that first, or no verdict would mean anything."
        )
        return 2

    killed: list[str] = []
    survived: list[Mutation] = []
    errors: list[str] = []
    for mutation in chosen:
        run = in_copy(mutation, mutation.tests)
        outcome = verdict(run.returncode)
        if outcome == "killed":
            killed.append(mutation.name)
        elif outcome == "SURVIVED":
            survived.append(mutation)
        else:
            errors.append(mutation.name)
        by = f"  by {caught_by(run.output)}" if outcome == "killed" else ""
        print(f"{outcome:<9} {mutation.name:<40} {run.seconds:6.1f}s{by}", flush=True)
        if args.verbose or outcome != "killed":
            print(tail(run.output, 400 if args.verbose else 40))

    total = time.monotonic() - started
    print(
        f"==> {len(killed)} killed, {len(survived)} survived, {len(errors)} error(s) "
        f"of {len(chosen)} mutation(s) in {total:.0f}s"
    )
    for mutation in survived:
        print(f"  survived {mutation.name}: {mutation.rule} ({mutation.path}); its tests passed:")
        for test in mutation.tests:
            print(f"    {test}")
        print(f"  rerun alone: scripts/mutate {mutation.name}")
    for name in errors:
        print(f"  error {name}: its tests could not run to a verdict (see the output above)")
    if errors:
        return 2
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
