"""The import direction of docs/architecture.md, checked on the source: sources -> kernel ->
transports and ledger, the dry run above the sources, nothing below importing the HTTP layer,
no source importing another, handlers that stay thin, and a local stack that uses only the
package's public names."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "layers" / "core" / "dagtrigger"

#: modules everything may use: they import nothing of the package's layers
FOUNDATION = {"errors", "clock", "ids", "settings", "observability", "validation", "conf"}
#: (importer, imported) areas that must never meet; an area is a module or a package
FORBIDDEN = {
    "foundation": {
        "transports",
        "ledger",
        "routes",
        "dependencies",
        "trigger",
        "sources",
        "dry_run",
        "http",
    },
    "transports": {
        "ledger",
        "routes",
        "dependencies",
        "trigger",
        "sources",
        "dry_run",
        "http",
        "health",
    },
    "ledger": {"routes", "dependencies", "trigger", "sources", "dry_run", "http", "health"},
    "routes": {"ledger", "dependencies", "trigger", "sources", "dry_run", "http", "health"},
    "dependencies": {"trigger", "sources", "dry_run", "http", "health"},
    "trigger": {"sources", "dry_run", "http", "health"},
    "health": {"sources", "dry_run", "http"},
    # the dry run composes the sources' own verdicts: above them, below the HTTP layer
    "sources": {"dry_run", "http"},
    "dry_run": {"http"},
}
HANDLER_MAX_LINES = 30


def area_of(module: str) -> str:
    """``dagtrigger.sources.s3.parse`` -> ``sources``; foundation modules -> ``foundation``."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    return "foundation" if top in FOUNDATION else top


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def runtime_imports(path: Path) -> Iterator[str]:
    """Modules ``path`` imports when it runs (``if TYPE_CHECKING:`` blocks left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def package_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_package_has_the_areas_the_rules_name() -> None:
    # A renamed area would make its rules vacuous.
    found = {area_of(module_name(path)) for path in package_modules()}
    assert set(FORBIDDEN) <= found


@pytest.mark.parametrize("path", package_modules(), ids=lambda path: module_name(path))
def test_imports_go_one_way(path: Path) -> None:
    importer = module_name(path)
    area = area_of(importer)
    forbidden = FORBIDDEN.get(area, set())
    wrong = sorted(
        imported
        for imported in set(runtime_imports(path))
        if imported.startswith("dagtrigger.") and area_of(imported) in forbidden
    )
    assert not wrong, f"{importer} ({area}) must not import {wrong}"


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "sources").rglob("*.py")), ids=lambda path: module_name(path)
)
def test_no_source_imports_another(path: Path) -> None:
    source = module_name(path).split(".")[2] if module_name(path).count(".") > 1 else None
    others = sorted(
        imported
        for imported in set(runtime_imports(path))
        if imported.startswith("dagtrigger.sources.") and imported.split(".")[2] != source
    )
    assert not others, f"{module_name(path)} imports another source: {others}"


@pytest.mark.parametrize("path", sorted((REPO / "functions").glob("*/app.py")), ids=str)
def test_handlers_are_thin(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= HANDLER_MAX_LINES, f"{path} has {len(lines)} lines"
    functions = [
        node for node in ast.parse("\n".join(lines)).body if isinstance(node, ast.FunctionDef)
    ]
    assert all(len(function.body) <= 3 for function in functions), "handlers hold no logic"


@pytest.mark.parametrize("path", sorted((REPO / "devstack").rglob("*.py")), ids=str)
def test_the_local_stack_uses_only_public_names_of_the_package(path: Path) -> None:
    private = sorted(
        imported
        for imported in set(runtime_imports(path))
        if imported.startswith("dagtrigger")
        and any(part.startswith("_") for part in imported.split("."))
    )
    assert not private, f"{path} imports private names: {private}"
