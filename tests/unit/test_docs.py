"""The README and the docs/ pages stay short, reachable and true to the code: what they
name (pages, anchors, files, tests, problem types) exists. `mkdocs build --strict` in
.ci/run checks the links between the pages themselves."""

from __future__ import annotations

import re
from pathlib import Path

import markdown
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()
PAGES = {path.name: path.read_text() for path in sorted(DOCS.glob("*.md"))}


def anchors(text: str) -> set[str]:
    """The heading ids MkDocs gives a page (Python-Markdown's toc extension, as mkdocs.yml)."""
    converter = markdown.Markdown(extensions=["toc", "tables", "fenced_code"])
    converter.convert(text)
    found: set[str] = set()

    def walk(tokens: list[dict]) -> None:
        for token in tokens:
            found.add(token["id"])
            walk(token["children"])

    walk(converter.toc_tokens)
    return found


def nav_pages(entries: list) -> list[str]:
    pages: list[str] = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages.extend(nav_pages(value) if isinstance(value, list) else [value])
    return pages


def test_the_readme_reads_in_five_minutes():
    assert len(README.splitlines()) < 250


def test_every_docs_page_is_in_the_mkdocs_nav_and_every_nav_entry_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = nav_pages(config["nav"])
    assert sorted(listed) == sorted(PAGES), "add the page to `nav` in mkdocs.yml (or remove the entry)"
    assert len(PAGES) >= 9  # the glob itself works


def test_the_readme_links_only_to_docs_pages_and_anchors_that_exist():
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)", README)
    assert len(links) >= 9, links  # the README points into the docs
    for page, anchor in links:
        path = ROOT / page
        assert path.is_file(), page
        if anchor:
            assert anchor in anchors(path.read_text()), f"{page} has no heading #{anchor}"


def test_every_file_the_docs_name_exists():
    named: set[str] = set()
    for text in [README, *PAGES.values()]:
        for path in re.findall(
            r"`((?:jobs|jobplatform|tests|docker|scripts|benchmarks|requirements|docs)/[^`\s]*)`", text
        ):
            if "*" not in path and "…" not in path:
                named.add(path.split("::")[0])
    assert len(named) > 50, named  # the scan itself works
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == [], missing


def test_every_test_the_docs_name_exists():
    sources = [path.read_text() for path in (ROOT / "tests").rglob("*.py")]
    defined = {name for text in sources for name in re.findall(r"^\s*def (test_\w+)", text, re.M)}
    files = {path.stem for path in (ROOT / "tests").rglob("test_*.py")}
    named: set[tuple[str, bool]] = set()
    for text in [README, *PAGES.values()]:
        for name, cut in re.findall(r"\b(test_[a-z0-9_]+)(…)?", text):
            named.add((name, bool(cut)))
    assert len(named) > 30, named  # the scan itself works
    missing = sorted(
        name
        for name, cut in named
        if name not in defined | files and not (cut and any(d.startswith(name) for d in defined))
    )
    assert missing == [], missing


def test_every_problem_type_the_code_answers_with_is_documented():
    errors = PAGES["api.md"][PAGES["api.md"].index("\n## Errors\n") :]
    from jobs.api.errors import ProblemType

    slugs = {problem_type.value for problem_type in ProblemType}
    missing = sorted(slug for slug in slugs if f"`urn:jobplatform:problem:{slug}`" not in errors)
    assert missing == [], missing


#: Dotted names in the docs that are not Python paths: two logger names and a SQL file.
NOT_PYTHON = {"jobs.requests", "jobs.transitions", "jobs.sql"}


def defined_in(text: str, name: str) -> bool:
    """``name`` is defined (or imported) at some level of a module's source."""
    import ast

    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (alias.asname or alias.name.split(".")[0]) == name for alias in node.names
        ):
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(target, ast.Name) and target.id == name for target in targets):
                return True
    return False


def test_every_python_name_the_docs_give_exists():
    named = {
        name
        for text in [README, *PAGES.values()]
        for name in re.findall(r"`((?:jobs|jobplatform|benchmarks|tests)\.[A-Za-z0-9_.]+)`", text)
    } - NOT_PYTHON
    assert len(named) > 15, named  # the scan itself works
    missing = []
    for name in sorted(named):
        parts = name.split(".")
        # The longest leading part that is a module (a .py file or a package folder).
        for cut in range(len(parts), 0, -1):
            base = ROOT.joinpath(*parts[:cut])
            module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
            if module.is_file():
                break
        else:
            missing.append(name)
            continue
        text = module.read_text()
        if not all(defined_in(text, attribute) for attribute in parts[cut:]):
            missing.append(name)
    assert missing == [], missing


def test_the_api_pages_root_row_names_every_link_the_root_always_gives():
    from jobs.api.schema import ROOT_LINKS

    row = next(line for line in PAGES["api.md"].splitlines() if line.startswith("| `GET` | `/` |"))
    listed = row.split("links to the entry points:", 1)[1].split(";", 1)[0]
    assert re.findall(r"`(\w+)`", listed) == list(ROOT_LINKS)
