"""The package's layers point one way: each module imports only from its own layer and those below.

Read from the source with `ast` (every import, those under TYPE_CHECKING and inside functions
included), so the rule holds for what the code says, not for what one run happens to import.
docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

PACKAGE = Path(__file__).resolve().parents[1] / "orchestrator"

#: Bottom to top. A module belongs to the first layer with a prefix that matches its name.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("orchestrator.errors", "orchestrator.logs", "orchestrator.model", "orchestrator.config", "orchestrator.lifetime")),
    ("targets", ("orchestrator.sandbox", "orchestrator.emulator", "orchestrator._moto_serve", "orchestrator._child_server")),
    ("templates", ("orchestrator.templates",)),
    ("executors", ("orchestrator.executors",)),
    ("actions", ("orchestrator.actions",)),
    ("planner", ("orchestrator.planner", "orchestrator.loader", "orchestrator.retry", "orchestrator.schema", "orchestrator.selection")),
    ("engine", ("orchestrator.engine",)),
    ("interfaces", (
        "orchestrator.api", "orchestrator.scheduler", "orchestrator.cli", "orchestrator.target",
        "orchestrator.history", "orchestrator.testing", "orchestrator",
    )),
)

#: What the CLI may not reach around the public API for (it plans and runs as scripts do).
CLI_BYPASSES = ("orchestrator.loader", "orchestrator.planner", "orchestrator.engine.runner", "orchestrator.executors")


def layer_of(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS and to docs/architecture.md")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[tuple[int, str, tuple[str, ...], bool]]:
    """(line, imported module, names imported from it, under TYPE_CHECKING) for each of our imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only |= {id(n) for child in node.body for n in ast.walk(child)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "orchestrator":
                    yield node.lineno, alias.name, (), id(node) in type_only
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "orchestrator":
            names = tuple(alias.name for alias in node.names)
            # `from orchestrator import logs` imports the module orchestrator.logs
            submodules = [n for n in names if (PACKAGE.parent / node.module.replace(".", "/") / n).with_suffix(".py").exists()
                          or (PACKAGE.parent / node.module.replace(".", "/") / n / "__init__.py").exists()]
            for name in submodules:
                yield node.lineno, f"{node.module}.{name}", (), id(node) in type_only
            if len(submodules) < len(names):
                yield node.lineno, node.module, tuple(n for n in names if n not in submodules), id(node) in type_only


def upward_imports(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        importer = module_name(path)
        for line, imported, _, _ in imports(path):
            if layer_of(imported) > layer_of(importer):
                found.append(
                    f"orchestrator/{path.relative_to(root)}:{line}: {importer} ({LAYERS[layer_of(importer)][0]}) imports "
                    f"{imported} ({LAYERS[layer_of(imported)][0]}), a layer above it"
                )
    return found


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    """foundation < targets < templates < executors < actions < planner < engine < interfaces: an
    import may point down or sideways, never up."""
    assert upward_imports() == []


def test_the_check_finds_an_upward_import(tmp_path: Path) -> None:
    """The rule is live: a model module importing the engine is reported, with its place."""
    model = tmp_path / "orchestrator" / "model"
    model.mkdir(parents=True)
    (model / "bad.py").write_text("from orchestrator.engine.runner import execute\n", encoding="utf-8")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "orchestrator"
    try:
        found = upward_imports(PACKAGE)
    finally:
        PACKAGE = saved
    assert found == [
        "orchestrator/model/bad.py:1: orchestrator.model.bad (foundation) imports "
        "orchestrator.engine.runner (engine), a layer above it"
    ]


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").rglob("*.py")), ids=lambda p: p.name)
def test_the_cli_plans_and_runs_through_the_public_api(path: Path) -> None:
    """The CLI is a client of `orchestrator.api`, like any script: it does not load, plan, run or
    build executors itself (types for annotations excepted)."""
    bypasses = [
        f"{path.name}:{line}: {imported}"
        for line, imported, names, type_only in imports(path)
        if not type_only and any(imported == b or imported.startswith(b + ".") for b in CLI_BYPASSES)
    ]
    assert bypasses == []


def test_every_module_has_a_layer() -> None:
    """A new module must be placed in a layer (here and in docs/architecture.md) before it lands."""
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))
