"""The README's module table against the tree: every module of ``services/`` has its row."""

from __future__ import annotations

import re
from pathlib import Path

#: the repository root
ROOT = Path(__file__).resolve().parents[2]
#: the ``phonebank`` package's source folder
PACKAGE = ROOT / "services"
#: the header row that opens the module table
TABLE_HEADER = "| module | owns |"
#: a row's first cell: one path (or glob) below ``services/`` in backticks
ROW_PATH = re.compile(r"^\| `([^`]+)` \|")


def table_paths(readme: str) -> list[str]:
    """The paths the README's module table names, in order, one per row."""
    lines = readme.splitlines()
    start = lines.index(TABLE_HEADER) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        match = ROW_PATH.match(line)
        assert match, f"a module row names one path in backticks: {line!r}"
        rows.append(match.group(1))
    return rows


def documented_files(paths: list[str]) -> set[str]:
    """The files the rows name (a glob row names every file it matches)."""
    found: set[str] = set()
    for path in paths:
        matches = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.glob(path)}
        assert matches, f"the README's module table names {path}, which does not exist"
        found |= matches
    return found


def modules() -> set[str]:
    """Every module of the package but the packages' ``__init__.py``, and every Lua script."""
    files = [p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"]
    files += list((PACKAGE / "leases" / "lua").glob("*.lua"))
    return {p.relative_to(PACKAGE).as_posix() for p in files}


def test_every_module_has_its_row_in_the_readme() -> None:
    """Given the README's module table and the package's files,
    When the rows' paths are expanded,
    Then every module has a row, and no row names a file that is gone."""
    paths = table_paths((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(paths) == len(set(paths)), "a module is listed twice in the README"
    missing = sorted(modules() - documented_files(paths))
    assert missing == [], f"add a row to the README's module table for each of {missing}"


def test_every_package_is_described_in_the_readme_layout() -> None:
    """Given the package's sub-packages, When the README is read,
    Then each is named in the layout (as `name/`)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    packages = sorted(path.parent.name for path in PACKAGE.glob("*/__init__.py"))
    assert [name for name in packages if f"`{name}/`" not in readme] == []
