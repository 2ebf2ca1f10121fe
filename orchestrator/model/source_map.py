"""Where each value of a loaded document came from: its line and column, by path.

Kept apart from the YAML loader (`model/source.py`) so that a playbook read back from the validated
cache carries its source map without importing YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.errors import Diagnostic

if TYPE_CHECKING:
    from collections.abc import Sequence

#: A path through a document, e.g. ``("steps", 2, "retry", "attempts")``.
Path = tuple[str | int, ...]


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
