"""The package's layers, checked on the source: what each layer may import.

- ``domain`` holds pure rules: no I/O library and no other phonebank layer;
- an app package (``ingest``, ``assigner``, ``reporter``, ``gateway``) never imports another;
- ``local`` (the stack and the demo) is imported by nothing but the command line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

#: the ``phonebank`` package's source folder
PACKAGE = Path(__file__).resolve().parents[2] / "services"
#: top-level modules that mean I/O, forbidden in ``domain``
IO_MODULES = {"redis", "kafka", "prometheus_client", "http", "socket", "subprocess", "urllib"}
#: the app packages, one per service
APPS = {"ingest", "assigner", "reporter", "gateway"}
#: modules allowed to import ``phonebank.local``: the command line and local itself
LOCAL_IMPORTERS = {"cli", "__main__", "local"}


def modules() -> Iterator[tuple[str, Path]]:
    """Every module of the package as (dotted name below ``phonebank``, path)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        yield ".".join(path.relative_to(PACKAGE).with_suffix("").parts), path


def imported(path: Path) -> set[str]:
    """The absolute module names ``path`` imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def layer(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def phonebank_layers(names: set[str]) -> set[str]:
    return {name.split(".")[1] for name in names if name.startswith("phonebank.") and "." in name}


@pytest.mark.parametrize(
    ("module", "path"), [m for m in modules() if layer(m[0]) == "domain"], ids=str
)
def test_domain_is_pure(module: str, path: Path) -> None:
    # Given a module of the domain layer, When its imports are read
    names = imported(path)
    # Then none does I/O, and none reaches into another layer (the settings object is data)
    assert not {name.split(".")[0] for name in names} & IO_MODULES, module
    assert phonebank_layers(names) <= {"domain", "settings"}, module


def test_no_app_imports_another() -> None:
    # Given every module of an app package
    crossings = {
        module: sorted(phonebank_layers(imported(path)) & (APPS - {layer(module)}))
        for module, path in modules()
        if layer(module) in APPS
    }
    # Then none imports another app
    assert {module: apps for module, apps in crossings.items() if apps} == {}


def test_nothing_but_the_command_line_imports_local() -> None:
    importers = [
        module
        for module, path in modules()
        if layer(module) not in LOCAL_IMPORTERS and "local" in phonebank_layers(imported(path))
    ]
    assert importers == []


def test_the_layers_are_the_documented_ones() -> None:
    # Given the README's architecture, Then the package has exactly these sub-packages
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert packages == APPS | {"domain", "leases", "infra", "ops", "local"}
