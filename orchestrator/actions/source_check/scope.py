"""One module's names, as written: the bindings of its top level (or of a class body) in the order
written, read from its parsed source with `ast` and never run, and whether the module could make
names at import time that its source does not bind."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Binding:
    stmt: ast.stmt
    #: The value bound: an expression, an imported name, or None for a def/class (the statement
    #: itself) or for a binding that cannot be read (a loop variable, `with ... as`, `+=`).
    value: ast.expr | ast.alias | None
    conditional: bool


class Scope:
    """The names a module's top level (or a class body) binds, in the order written. Function
    bodies are not read: what they bind is theirs."""

    def __init__(self, body: list[ast.stmt]) -> None:
        self.bindings: dict[str, list[Binding]] = {}
        self.stars: list[ast.ImportFrom] = []
        #: Imports that always run when the module is imported (not under `if`/`try`/...).
        self.imports: list[ast.Import | ast.ImportFrom] = []
        self._collect(body, conditional=False)

    def _bind(self, name: str, stmt: ast.stmt, value: ast.expr | ast.alias | None, conditional: bool) -> None:
        self.bindings.setdefault(name, []).append(Binding(stmt, value, conditional))

    def _target(self, target: ast.expr, stmt: ast.stmt, value: ast.expr | None, conditional: bool) -> None:
        if isinstance(target, ast.Name):
            self._bind(target.id, stmt, value, conditional)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self._target(element, stmt, None, conditional)
        elif isinstance(target, ast.Starred):
            self._target(target.value, stmt, None, conditional)

    def _collect(self, body: list[ast.stmt], conditional: bool) -> None:
        for stmt in body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self._bind(stmt.name, stmt, None, conditional)
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    self._target(target, stmt, stmt.value, conditional)
            elif isinstance(stmt, ast.AnnAssign):
                if stmt.value is not None:
                    self._target(stmt.target, stmt, stmt.value, conditional)
            elif isinstance(stmt, ast.AugAssign):
                self._target(stmt.target, stmt, None, conditional)
            elif isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    self._bind(alias.asname or alias.name.partition(".")[0], stmt, alias, conditional)
                if not conditional:
                    self.imports.append(stmt)
            elif isinstance(stmt, ast.ImportFrom):
                for alias in stmt.names:
                    if alias.name == "*":
                        self.stars.append(stmt)
                    else:
                        self._bind(alias.asname or alias.name, stmt, alias, conditional)
                if not conditional:
                    self.imports.append(stmt)
            elif isinstance(stmt, ast.For | ast.AsyncFor):
                self._target(stmt.target, stmt, None, True)
                self._collect(stmt.body, True)
                self._collect(stmt.orelse, True)
            elif isinstance(stmt, ast.While | ast.If):
                self._collect(stmt.body, True)
                self._collect(stmt.orelse, True)
            elif isinstance(stmt, ast.With | ast.AsyncWith):
                for item in stmt.items:
                    if item.optional_vars is not None:
                        self._target(item.optional_vars, stmt, None, conditional)
                self._collect(stmt.body, conditional)
            elif isinstance(stmt, ast.Try | ast.TryStar):
                self._collect(stmt.body, True)
                for handler in stmt.handlers:
                    self._collect(handler.body, True)
                self._collect(stmt.orelse, True)
                self._collect(stmt.finalbody, conditional)
            elif isinstance(stmt, ast.Match):
                for case in stmt.cases:
                    self._collect(case.body, True)


class Source:
    """A module's source, parsed: its top-level names and what could make others at import time."""

    def __init__(self, name: str, is_package: bool, path: Path | None, tree: ast.Module) -> None:
        self.name = name
        self.is_package = is_package
        self.label = path.name if path is not None else name
        self.scope = Scope(tree.body)
        self.dynamic = _dynamic(tree, self.scope)
        self._classes: dict[int, Scope] = {}

    def class_scope(self, node: ast.ClassDef) -> Scope:
        scope = self._classes.get(id(node))
        if scope is None:
            scope = self._classes[id(node)] = Scope(node.body)
        return scope

    @property
    def all_names(self) -> frozenset[str] | None:
        """The module's `__all__` when it is one literal list or tuple of strings."""
        bindings = self.scope.bindings.get("__all__", [])
        if len(bindings) != 1 or not isinstance(bindings[0].value, ast.List | ast.Tuple):
            return None
        names = [e.value for e in bindings[0].value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return frozenset(names) if len(names) == len(bindings[0].value.elts) else None


def _dynamic(tree: ast.Module, scope: Scope) -> str:
    """How the module could make names at import time that its source does not bind, if it can."""
    if "__getattr__" in scope.bindings:
        return "a module-level __getattr__"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("globals", "exec") or (node.func.id == "vars" and not node.args):
                return f"{node.func.id}() at line {node.lineno}"
        elif isinstance(node, ast.Attribute) and node.attr == "modules" and isinstance(node.value, ast.Name) and node.value.id == "sys":
            return f"sys.modules at line {node.lineno}"
    return ""
