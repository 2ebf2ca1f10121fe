"""Safe YAML with a line and column kept for every node.

`load_yaml` turns text into plain Python values and a `SourceMap` that locates each value (and each
mapping key) by its path, e.g. ``("steps", 2, "retry", "attempts")``. Later stages report errors by
path; the source map turns a path into ``FILE:LINE:COL``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from orchestrator.errors import Diagnostic

if TYPE_CHECKING:
    from collections.abc import Sequence

try:  # the C composer keeps marks too and is ~10x faster on large playbooks
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Path = tuple[str | int, ...]

# Aliases can make a small document expand enormously ("billion laughs"); refuse past this.
_MAX_NODES = 2_000_000


@dataclass(frozen=True)
class SourceMap:
    """Where each value of a loaded document came from."""

    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """Line and column of the value at `path` (of its key with `key=True`), else of its nearest parent."""
        p = tuple(path)
        if key and p in self.keys:
            return self.keys[p]
        while p:
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), (1, 1))

    def diagnostic(self, path: Sequence[str | int], message: str, *, key: bool = False) -> Diagnostic:
        line, col = self.locate(path, key=key)
        return Diagnostic(self.file, line, col, message)


class YamlError(Exception):
    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("\n".join(map(str, diagnostics)))
        self.diagnostics = diagnostics


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document safely. Raises YamlError with every problem located."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "end of stream" in (exc.problem or ""):
            mark = exc.context_mark  # an unclosed quote or bracket: point where it opened
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlError([Diagnostic(file, line, col, f"YAML syntax error: {what}; fix the YAML syntax")]) from None
    except yaml.YAMLError as exc:
        raise YamlError([Diagnostic(file, 1, 1, f"YAML error: {exc}")]) from None
    smap = SourceMap(file)
    if node is None:
        return None, smap
    builder = _Builder(smap)
    value = builder.build(node, ())
    if builder.problems:
        raise YamlError(builder.problems)
    return value, smap


def _problem(exc: yaml.YAMLError) -> str:
    """The one-line reason of a YAML error, without PyYAML's multi-line location text."""
    text = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return str(text)


class _Builder:
    def __init__(self, smap: SourceMap) -> None:
        self.smap = smap
        self.problems: list[Diagnostic] = []
        self.count = 0
        self.scalars = yaml.constructor.SafeConstructor()

    def _here(self, node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise YamlError([Diagnostic(self.smap.file, *self._here(node), "document too large (alias expansion?)")])
        self.smap.values.setdefault(path, self._here(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                return self.scalars.construct_object(node)
            except yaml.YAMLError as exc:
                self.problems.append(Diagnostic(self.smap.file, *self._here(node), f"bad value: {_problem(exc)}"))
                return None
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        return None  # pragma: no cover - compose yields only the three node kinds

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(
                    Diagnostic(self.smap.file, *self._here(key_node), "mapping keys must be plain scalars")
                )
                continue
            try:
                key = self.scalars.construct_object(key_node)
            except yaml.YAMLError as exc:
                self.problems.append(Diagnostic(self.smap.file, *self._here(key_node), f"bad key: {_problem(exc)}"))
                continue
            if not isinstance(key, str | int) or isinstance(key, bool):
                key = str(key)
            if key in out:
                self.problems.append(
                    Diagnostic(self.smap.file, *self._here(key_node), f"duplicate key {key!r}; remove one of them")
                )
                continue
            self.smap.keys[(*path, key)] = self._here(key_node)
            out[key] = self.build(value_node, (*path, key))
        return out
