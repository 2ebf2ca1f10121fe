"""Locating modules without importing them: where the import system would find a module (in the
playbook's folder, on `sys.path`, through any installed finder), as a `Module` with its spec, run
through no package's ``__init__``; and the file stamps that tell whether what was read has changed."""

from __future__ import annotations

import importlib.machinery
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec

_SOURCE_SUFFIXES = tuple(importlib.machinery.SOURCE_SUFFIXES)
_LOADERS: tuple[tuple[Any, list[str]], ...] = (
    (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
    (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES),
    (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
)


class MissingImport(ModuleNotFoundError):
    """The target's module imports, at its top level, a module that is nowhere to be found."""

    def __init__(self, name: str, where: str) -> None:
        super().__init__(f"No module named {name!r}", name=name)
        self.where = where


@dataclass(frozen=True)
class Module:
    name: str
    spec: ModuleSpec
    #: Found in the playbook's folder (or in a package there).
    in_folder: bool

    @property
    def file(self) -> Path | None:
        origin = self.spec.origin
        return Path(origin) if origin and self.spec.has_location else None

    @property
    def source(self) -> Path | None:
        file = self.file
        return file if file is not None and file.name.endswith(_SOURCE_SUFFIXES) else None

    @property
    def is_package(self) -> bool:
        return self.spec.submodule_search_locations is not None

    @property
    def is_namespace(self) -> bool:
        return self.spec.loader is None and self.is_package


_FINDERS: dict[str, importlib.machinery.FileFinder] = {}


def find_in_dirs(fullname: str, dirs: Sequence[str]) -> ModuleSpec | None:
    """`PathFinder.find_spec` over folders, with finders of our own: nothing is added to the import
    system's caches for the playbook's folder."""
    portions: list[str] = []
    for d in dirs:
        finder = _FINDERS.get(d)
        if finder is None:
            finder = _FINDERS[d] = importlib.machinery.FileFinder(d, *_LOADERS)
        spec = finder.find_spec(fullname)
        if spec is None:
            continue
        if spec.loader is not None:
            return spec
        portions.extend(spec.submodule_search_locations or ())
    if portions:
        spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
        spec.submodule_search_locations = portions
        return spec
    return None


_entries_cache: dict[tuple[tuple[str, ...], str, str], list[str]] = {}


def _other_entries(folder: Path) -> list[str]:
    """`sys.path` without the playbook's folder."""
    key = (tuple(sys.path), os.getcwd(), str(folder))
    entries = _entries_cache.get(key)
    if entries is None:
        entries = [p for p in sys.path if _entry_path(p) != folder]
        if len(_entries_cache) > 16:
            _entries_cache.clear()
        _entries_cache[key] = entries
    return entries


def _entry_path(entry: str) -> Path | None:
    try:
        return Path(entry or os.getcwd()).resolve()
    except (OSError, RuntimeError):
        return None


def elsewhere(top: str, folder: Path | None) -> ModuleSpec | None:
    """Where the import system finds the top-level module `top` outside the playbook's folder
    (built-in, frozen, on `sys.path`, through any installed finder), without importing it."""
    for finder in sys.meta_path:
        try:
            if finder is importlib.machinery.PathFinder:
                spec = finder.find_spec(top, _other_entries(folder) if folder is not None else None)
            else:
                find_spec = getattr(finder, "find_spec", None)
                spec = find_spec(top, None) if find_spec is not None else None
        except Exception:  # a third-party finder that fails finds nothing
            continue
        if spec is not None and not (folder is not None and _beside(spec, folder)):
            return spec
    return None


def _beside(spec: ModuleSpec, folder: Path) -> bool:
    """Whether the top-level module `spec` is a file or package directly in `folder`."""
    if spec.origin and spec.has_location:
        path = Path(spec.origin).resolve()
        parent = path.parent.parent if spec.submodule_search_locations is not None else path.parent
        return parent == folder
    locations = list(spec.submodule_search_locations or ())
    return bool(locations) and all(Path(p).resolve().parent == folder for p in locations)


def top_file(folder: Path, top: str) -> Path:
    package = folder / top
    return package if package.is_dir() else folder / f"{top}.py"


def stamp(path: str) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (path, -1, -1)
    return (path, st.st_mtime_ns, st.st_size)


def same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
