"""Reading a `call:` target from source, so that planning runs none of the playbook's code.

A dry run and `orchestrate check` execute nothing, and importing a module runs its top level (which
may write a file), as a package's ``__init__`` does. So planning never imports a `call:` module:
`find` locates ``module`` as the import system would, without importing it or its parent
packages, and reads ``function`` from the source with `ast`. A real run imports the module as any
import does, and `Found.confirm` checks that what it got is what the plan was decided on.

Where modules are looked up. The target's own module: in the playbook's folder first, then as any
import. A module it imports: as at run time, when the folder comes after the installed modules
(`modules.importable`). A target module beside the playbook that has the name of an installed or
standard-library module is refused (`Shadows`): at run time the installed one would be imported.

What reading tells for certain (`Found.unverified` is empty):

- a module-level ``def`` (a plain function, picklable by reference) or ``async def`` (a coroutine
  function: non-blocking, never sent to a process), a ``class``, a ``def`` in a class body;
- a name bound to a ``lambda`` (callable, not picklable: pickle finds functions by name), to a
  literal (not callable), to another name or to an attribute of an imported module; a name
  imported from a module that is read in turn (``from .impl import run``, ``import helpers`` then
  ``helpers.run``), or star-imported from one (its literal ``__all__`` respected); an instance of a
  class whose ``__call__`` is in its body;
- a missing module, a missing name (when nothing in the module can make names at import time) and
  a module the target's module imports at its top level that is nowhere to be found.

What it cannot tell (the step still plans; `Found.unverified` says why, and the run checks):

- what a decorator returns (``@cache def f`` is taken to be what the ``def`` says);
- a name made by running code: ``f = make()``, ``globals()[...]``, ``exec``, a module
  ``__getattr__``, a name bound in two places to different things;
- names in modules that are not Python source (C extensions, built-in modules, bytecode only):
  when such a module is outside the playbook's folder and already imported in this process, its
  module object is read (nothing runs); otherwise only its existence is checked.
"""

from __future__ import annotations

import ast
import builtins
import importlib.machinery
import importlib.util
import inspect
import os
import pickle
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

_SOURCE_SUFFIXES = tuple(importlib.machinery.SOURCE_SUFFIXES)
_LOADERS: tuple[tuple[Any, list[str]], ...] = (
    (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
    (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES),
    (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
)
_LITERALS: dict[type[ast.AST], str] = {
    ast.List: "list", ast.Tuple: "tuple", ast.Dict: "dict", ast.Set: "set", ast.JoinedStr: "str",
    ast.ListComp: "list", ast.SetComp: "set", ast.DictComp: "dict", ast.GeneratorExp: "generator",
}
_METHOD_DECORATORS = frozenset({"staticmethod", "classmethod"})
_MAX_DEPTH = 64


def is_async(fn: Any) -> bool:
    """Whether calling `fn` gives a coroutine to await: a coroutine function, or an instance whose
    ``__call__`` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


class Shadows(Exception):
    """The target's module beside the playbook has the name of an installed module."""

    def __init__(self, file: Path, name: str, installed: str) -> None:
        super().__init__(
            f"{file} beside the playbook has the name of the installed module {name!r} ({installed}); "
            f"modules beside a playbook never shadow installed ones: rename {file.name}"
        )
        self.file = file


class MissingImport(ModuleNotFoundError):
    """The target's module imports, at its top level, a module that is nowhere to be found."""

    def __init__(self, name: str, where: str) -> None:
        super().__init__(f"No module named {name!r}", name=name)
        self.where = where


@dataclass(frozen=True)
class Found:
    """What a `call:` target is, as far as its source tells."""

    target: str
    #: None when only running code could tell.
    callable: bool | None
    is_async: bool
    #: Whether pickle can send it to a worker process by reference; None when unknown.
    picklable: bool | None
    #: E.g. "a def at tasks.py:3", "an int at tasks.py:9".
    what: str
    #: Why the source cannot tell what the target is ("" when it can).
    unverified: str = ""
    #: The target module's file, when it is beside the playbook (a run checks it imported that one).
    module_file: Path | None = None
    #: The object itself, when it was read from a module already imported (see the module docstring).
    live: Any = None
    #: (file, mtime_ns, size) of every file read, and of the playbook's folder: the answer holds while they do.
    stamps: tuple[tuple[str, int, int], ...] = field(default=(), repr=False, compare=False)

    def fresh(self) -> bool:
        """Whether every file this answer was read from is unchanged."""
        return all(_stamp(path) == (path, mtime, size) for path, mtime, size in self.stamps)

    def pickling_problem(self) -> str | None:
        """Why the target cannot be sent to a worker process, or None when it can (or cannot be told)."""
        if self.live is not None:
            try:
                pickle.dumps(self.live)
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"
            return None
        if self.picklable is False:
            return f"PicklingError: it is {self.what}, and pickle finds a function by its name, which a lambda does not have"
        return None

    def confirm(self, fn: Any, module: ModuleType) -> None:
        """At run time: fail unless `fn`, imported from `module`, is what the plan read."""
        if self.module_file is not None:
            loaded = getattr(module, "__file__", None)
            if loaded is None or not _same_file(loaded, self.module_file):
                raise ImportError(
                    f"module {module.__name__!r} is already imported from {loaded or 'elsewhere'} in this process, "
                    f"not from {self.module_file}, which the plan read; give the module a name of its own"
                )
        now = is_async(fn)
        if now != self.is_async:
            said = "a coroutine function" if self.is_async else "not a coroutine function"
            got = "is one" if now else "is not"
            raise TypeError(
                f"{self.target} was planned as {said} ({self.what}), but the imported one {got}: the step's kind "
                "was decided on the source; declare `kind:` on the step, or make the source say what it is"
            )


def find(target: str, folder: Path | None) -> Found:
    """Read what `target` (``module:attr.attr``) is without running any of its code.

    Raises ModuleNotFoundError (MissingImport for a missing top-level import), AttributeError,
    SyntaxError, Shadows."""
    module_name, _, attr = target.partition(":")
    reader = _Reader(folder)
    module = reader.locate(module_name, folder_first=True)
    if module.in_folder and reader.folder is not None:
        top = module_name.partition(".")[0]
        installed = _elsewhere(top, reader.folder)
        if installed is not None:
            raise Shadows(_top_file(reader.folder, top), top, installed.origin or "built in")
    source = reader.source(module)
    if source is not None:
        reader.check_imports(source, relative=module.in_folder)
    value: _Value | None = None
    for part in attr.split("."):
        value = reader.lookup(module, part, importing=False) if value is None else reader.attr(value, part)
    assert value is not None
    stamps = [(p, mtime, size) for p, (mtime, size) in reader.read.items()]
    if reader.folder is not None:
        stamps.append(_stamp(str(reader.folder)))
    return Found(
        target, value.callable, value.is_async, value.picklable, value.what or "a callable", value.unverified,
        module_file=module.source if module.in_folder else None, live=value.obj, stamps=tuple(stamps),
    )


# --- locating modules without importing them --------------------------------------------------


@dataclass(frozen=True)
class _Module:
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


def _find_in_dirs(fullname: str, dirs: Sequence[str]) -> ModuleSpec | None:
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


def _elsewhere(top: str, folder: Path | None) -> ModuleSpec | None:
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


def _top_file(folder: Path, top: str) -> Path:
    package = folder / top
    return package if package.is_dir() else folder / f"{top}.py"


def _stamp(path: str) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (path, -1, -1)
    return (path, st.st_mtime_ns, st.st_size)


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# --- one module's names, as written -------------------------------------------------------------


@dataclass(frozen=True)
class _Binding:
    stmt: ast.stmt
    #: The value bound: an expression, an imported name, or None for a def/class (the statement
    #: itself) or for a binding that cannot be read (a loop variable, `with ... as`, `+=`).
    value: ast.expr | ast.alias | None
    conditional: bool


class _Scope:
    """The names a module's top level (or a class body) binds, in the order written. Function
    bodies are not read: what they bind is theirs."""

    def __init__(self, body: list[ast.stmt]) -> None:
        self.bindings: dict[str, list[_Binding]] = {}
        self.stars: list[ast.ImportFrom] = []
        #: Imports that always run when the module is imported (not under `if`/`try`/...).
        self.imports: list[ast.Import | ast.ImportFrom] = []
        self._collect(body, conditional=False)

    def _bind(self, name: str, stmt: ast.stmt, value: ast.expr | ast.alias | None, conditional: bool) -> None:
        self.bindings.setdefault(name, []).append(_Binding(stmt, value, conditional))

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


class _Source:
    """A module's source, parsed: its top-level names and what could make others at import time."""

    def __init__(self, name: str, is_package: bool, path: Path | None, tree: ast.Module) -> None:
        self.name = name
        self.is_package = is_package
        self.label = path.name if path is not None else name
        self.scope = _Scope(tree.body)
        self.dynamic = _dynamic(tree, self.scope)
        self._classes: dict[int, _Scope] = {}

    def class_scope(self, node: ast.ClassDef) -> _Scope:
        scope = self._classes.get(id(node))
        if scope is None:
            scope = self._classes[id(node)] = _Scope(node.body)
        return scope

    @property
    def all_names(self) -> frozenset[str] | None:
        """The module's `__all__` when it is one literal list or tuple of strings."""
        bindings = self.scope.bindings.get("__all__", [])
        if len(bindings) != 1 or not isinstance(bindings[0].value, ast.List | ast.Tuple):
            return None
        names = [e.value for e in bindings[0].value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return frozenset(names) if len(names) == len(bindings[0].value.elts) else None


def _dynamic(tree: ast.Module, scope: _Scope) -> str:
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


_PARSED: dict[tuple[str, str], tuple[int, int, _Source]] = {}


# --- what a name is -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Value:
    kind: str  # function | class | lambda | value | module | instance | live | unknown
    what: str = ""
    unverified: str = ""
    callable: bool | None = None
    is_async: bool = False
    picklable: bool | None = None
    type_name: str = ""
    module: _Module | None = None
    cls: tuple[_Source, ast.ClassDef] | None = None
    obj: Any = None


def _unknown(reason: str) -> _Value:
    return _Value("unknown", "a name made at import time", unverified=reason)


def _live(obj: Any, where: str) -> _Value:
    type_name = type(obj).__name__
    return _Value(
        "live", f"{_article(type_name)} {type_name} {where}", callable=callable(obj), is_async=is_async(obj),
        type_name=type_name, obj=obj,
    )


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Reader:
    """One look-up: the modules it located and read (for `Found.stamps`), and what it is resolving
    (so a name bound to itself through imports ends as unknown rather than in a loop)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder.resolve() if folder is not None else None
        self.read: dict[str, tuple[int, int]] = {}
        self.resolving: set[tuple[str, str]] = set()

    # modules

    def locate(self, name: str, *, folder_first: bool) -> _Module:
        """The module `name`, found as the import system would: the top-level name in the
        playbook's folder first (`folder_first`) or last; submodules in their package's folders.
        No package's ``__init__`` runs."""
        parts = name.split(".")
        if not all(parts):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        top, folder = parts[0], self.folder
        spec: ModuleSpec | None = None
        in_folder = False
        if folder is not None and folder_first:
            spec = _find_in_dirs(top, [str(folder)])
            in_folder = spec is not None
        if spec is None:
            spec = _elsewhere(top, folder)
            if spec is None and top in sys.modules:  # e.g. __main__, found by no finder
                spec = getattr(sys.modules[top], "__spec__", None)
        if spec is None and folder is not None and not folder_first:
            spec = _find_in_dirs(top, [str(folder)])
            in_folder = spec is not None
        if spec is None:
            raise ModuleNotFoundError(f"No module named {top!r}", name=top)
        module = _Module(top, spec, in_folder)
        for part in parts[1:]:
            module = self.submodule(module, part)
        return module

    def submodule(self, parent: _Module, part: str) -> _Module:
        full = f"{parent.name}.{part}"
        locations = parent.spec.submodule_search_locations
        if locations is None:
            if not parent.in_folder and full in sys.modules:
                return _Module(full, sys.modules[full].__spec__ or parent.spec, False)
            raise ModuleNotFoundError(f"No module named {full!r}; {parent.name!r} is not a package", name=full)
        if parent.in_folder:
            spec = _find_in_dirs(full, list(locations))
        else:
            spec = importlib.machinery.PathFinder.find_spec(full, list(locations))
            if spec is None and parent.name in sys.modules:  # imported already: finding it runs nothing
                try:
                    spec = importlib.util.find_spec(full)
                except Exception:
                    spec = None
        if spec is None and not parent.in_folder and full in sys.modules:  # e.g. os.path, which os makes
            spec = getattr(sys.modules[full], "__spec__", None)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {full!r}", name=full)
        return _Module(full, spec, parent.in_folder)

    def imported(self, source: _Source, module: str | None, level: int) -> _Module:
        """The module an import statement of `source` names (relative ones resolved)."""
        if not level:
            assert module is not None
            return self.locate(module, folder_first=False)
        base = source.name if source.is_package else source.name.rpartition(".")[0]
        for _ in range(level - 1):
            base = base.rpartition(".")[0]
        if not base:
            raise ModuleNotFoundError("attempted relative import beyond top-level package", name=module)
        full = f"{base}.{module}" if module else base
        top_in_folder = self.folder is not None and _find_in_dirs(full.partition(".")[0], [str(self.folder)]) is not None
        return self.locate(full, folder_first=top_in_folder)

    def source(self, module: _Module) -> _Source | None:
        """The module's parsed source; an empty one for a namespace package; None when it has no
        Python source."""
        if module.is_namespace:
            return _Source(module.name, True, None, ast.Module(body=[], type_ignores=[]))
        path = module.source
        if path is None:
            return None
        key = (str(path), module.name)
        _, mtime, size = _stamp(str(path))
        self.read[str(path)] = (mtime, size)
        hit = _PARSED.get(key)
        if hit is not None and hit[:2] == (mtime, size):
            return hit[2]
        tree = ast.parse(importlib.util.decode_source(path.read_bytes()), str(path))
        parsed = _Source(module.name, module.is_package, path, tree)
        if len(_PARSED) > 512:
            _PARSED.clear()
        _PARSED[key] = (mtime, size, parsed)
        return parsed

    def check_imports(self, source: _Source, *, relative: bool) -> None:
        """Raise MissingImport for the first module `source` always imports that is nowhere to be
        found: top-level names, and with `relative` the modules its relative imports name."""
        for stmt in source.scope.imports:
            where = f"{source.label}:{stmt.lineno}"
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    self._exists(alias.name.partition(".")[0], where)
            elif stmt.level:
                if stmt.module and relative:
                    try:
                        self.imported(source, stmt.module, stmt.level)
                    except ModuleNotFoundError as exc:
                        raise MissingImport(exc.name or stmt.module, where) from None
            elif stmt.module and stmt.module != "__future__":
                self._exists(stmt.module.partition(".")[0], where)

    def _exists(self, top: str, where: str) -> None:
        if top in sys.modules or _elsewhere(top, self.folder) is not None:
            return
        if self.folder is not None and _find_in_dirs(top, [str(self.folder)]) is not None:
            return
        raise MissingImport(top, where)

    # names

    def lookup(self, module: _Module, name: str, *, importing: bool) -> _Value:
        """What `module.name` is. With `importing` (``from module import name``), a submodule of
        that name counts, as the import statement imports it."""
        source = self.source(module)
        if source is None:
            live = self.live(module, name)
            if live is not None:
                return live
            sub = self._submodule_value(module, name, importing)
            if sub is not None:
                return sub
            where = module.file or "built in"
            return _unknown(f"module {module.name!r} is not Python source ({where}), so {name!r} is looked up at run time")
        try:
            value = self.name_in(source, name)
        except AttributeError:
            sub = self._submodule_value(module, name, importing)
            if sub is not None:
                return sub
            live = self.live(module, name)
            if live is not None:
                return live
            raise
        if value.unverified and not module.in_folder:
            live = self.live(module, name)
            if live is not None:
                return live
        return value

    def _submodule_value(self, module: _Module, name: str, importing: bool) -> _Value | None:
        if not module.is_package:
            return None
        try:
            sub = self.submodule(module, name)
        except ModuleNotFoundError:
            return None
        unverified = "" if importing else f"{sub.name} is a submodule: an attribute of {module.name} only once imported"
        return _Value("module", f"the module {sub.name}", unverified=unverified, callable=False, type_name="module", module=sub)

    def live(self, module: _Module, name: str) -> _Value | None:
        """`name` read from the module object, when the module is already imported in this process
        and outside the playbook's folder; None when it cannot be. Raises AttributeError when the
        module object says the name does not exist."""
        if module.in_folder:
            return None
        loaded = sys.modules.get(module.name)
        if loaded is None:
            return None
        spec = getattr(loaded, "__spec__", None)
        if spec is not None and spec.origin != module.spec.origin:
            return None
        namespace = vars(loaded)
        if name in namespace:
            return _live(namespace[name], f"read from {module.name}, imported already")
        if "__getattr__" in namespace:
            return None
        raise AttributeError(f"module {module.name!r} has no attribute {name!r}")

    def name_in(self, source: _Source, name: str) -> _Value:
        """What the top-level name `name` of `source` is. Raises AttributeError when it is not there."""
        key = (source.name, name)
        if key in self.resolving or len(self.resolving) > _MAX_DEPTH:
            return _unknown(f"{name!r} in {source.label} refers to itself through other names")
        self.resolving.add(key)
        try:
            bindings = source.scope.bindings.get(name)
            if not bindings:
                star = self.from_stars(source, name)
                if star is not None:
                    return star
                if source.dynamic:
                    return _unknown(f"{name!r} is not bound in {source.label}, which may make names at import time ({source.dynamic})")
                raise AttributeError(f"module {source.name!r} has no attribute {name!r}")
            return self.one_of(source, bindings, name, None)
        finally:
            self.resolving.discard(key)

    def one_of(self, source: _Source, bindings: list[_Binding], name: str, in_class: ast.ClassDef | None) -> _Value:
        """What a name bound by `bindings` is: the last one, when they all agree on what it is."""
        if len(bindings) == 1:
            return self.classify(source, bindings[0], in_class)
        values = []
        for binding in bindings:
            try:
                values.append(self.classify(source, binding, in_class))
            except (AttributeError, ModuleNotFoundError):
                values.append(_unknown("not found"))
        last = values[-1]
        if any((v.callable, v.is_async) != (last.callable, last.is_async) or v.kind == "unknown" for v in values):
            lines = ", ".join(str(b.stmt.lineno) for b in bindings)
            return _unknown(f"{name!r} is bound in more than one way in {source.label} (lines {lines})")
        return last

    def classify(self, source: _Source, binding: _Binding, in_class: ast.ClassDef | None) -> _Value:
        stmt, value = binding.stmt, binding.value
        where = f"{source.label}:{stmt.lineno}"
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            decorators = [d for d in stmt.decorator_list if not (in_class is not None and ast.unparse(d) in _METHOD_DECORATORS)]
            assumed = f"{stmt.name} at {where} is decorated with @{_short(ast.unparse(decorators[0]))}, which may return anything" if decorators else ""
            coroutine = isinstance(stmt, ast.AsyncFunctionDef)
            return _Value(
                "function", f"{'an async def' if coroutine else 'a def'} at {where}", unverified=assumed, callable=True,
                is_async=coroutine, picklable=None if decorators else True,
            )
        if isinstance(stmt, ast.ClassDef):
            assumed = f"class {stmt.name} at {where} is decorated with @{_short(ast.unparse(stmt.decorator_list[0]))}" if stmt.decorator_list else ""
            return _Value(
                "class", f"a class at {where}", unverified=assumed, callable=True,
                picklable=None if stmt.decorator_list else True, cls=(source, stmt),
            )
        if isinstance(value, ast.alias):
            return self.imported_name(source, stmt, value, binding.conditional)
        if value is None:
            return _unknown(f"bound at {where} by running code")
        if in_class is not None and not isinstance(value, ast.Lambda | ast.Constant) and type(value) not in _LITERALS:
            return _unknown(f"bound in the body of class {in_class.name} at {where} by running code")
        return self.expr(source, value, where)

    def imported_name(self, source: _Source, stmt: ast.stmt, alias: ast.alias, conditional: bool) -> _Value:
        where = f"{source.label}:{stmt.lineno}"
        if isinstance(stmt, ast.Import):
            name = alias.name if alias.asname else alias.name.partition(".")[0]
            try:
                module = self.locate(name, folder_first=False)
            except ModuleNotFoundError:
                return _unknown(f"{where} imports {name!r}, which is not found")
            return _Value("module", f"the module {name}", callable=False, type_name="module", module=module)
        assert isinstance(stmt, ast.ImportFrom)
        try:
            module = self.imported(source, stmt.module, stmt.level)
        except ModuleNotFoundError:
            return _unknown(f"{where} imports from {stmt.module!r}, which is not found")
        try:
            return self.lookup(module, alias.name, importing=True)
        except AttributeError:
            if conditional:
                return _unknown(f"{where} imports {alias.name!r} from {module.name!r}, which has no such name")
            raise AttributeError(f"{where} imports {alias.name!r} from {module.name!r}, which has no such name") from None

    def from_stars(self, source: _Source, name: str) -> _Value | None:
        """`name` as one of `source`'s ``from M import *`` brings it, if one does."""
        for stmt in reversed(source.scope.stars):
            where = f"{source.label}:{stmt.lineno}"
            try:
                module = self.imported(source, stmt.module, stmt.level)
            except ModuleNotFoundError:
                continue
            star = self.source(module)
            if star is None:
                try:
                    live = self.live(module, name)
                except AttributeError:
                    continue
                if live is not None:
                    return live
                return _unknown(f"{where} imports * from {module.name!r}, which is not Python source")
            exported = star.all_names
            if (exported is not None and name not in exported) or (exported is None and name.startswith("_")):
                continue
            try:
                return self.name_in(star, name)
            except AttributeError:
                continue
        return None

    def expr(self, source: _Source, node: ast.expr, where: str) -> _Value:
        """What the expression bound to a name is."""
        if isinstance(node, ast.Lambda):
            return _Value("lambda", f"a lambda at {where}", callable=True, picklable=False)
        if isinstance(node, ast.Constant):
            type_name = type(node.value).__name__
            return _Value("value", f"{_article(type_name)} {type_name} at {where}", callable=False, type_name=type_name)
        literal = _LITERALS.get(type(node))
        if literal is not None:
            return _Value("value", f"{_article(literal)} {literal} at {where}", callable=False, type_name=literal)
        if isinstance(node, ast.Name):
            try:
                return self.name_in(source, node.id)
            except AttributeError:
                if hasattr(builtins, node.id):
                    return _live(getattr(builtins, node.id), "from builtins")
                return _unknown(f"{node.id!r} at {where} is not bound at the module's top level")
        if isinstance(node, ast.Attribute):
            return self.attr(self.expr(source, node.value, where), node.attr)
        if isinstance(node, ast.Call):
            try:
                func = self.expr(source, node.func, where)
            except (AttributeError, ModuleNotFoundError):
                func = _unknown("")
            if func.kind == "class" and func.cls is not None and not func.unverified:
                return self.instance(func.cls, where)
            return _unknown(f"made at {where} by calling {_short(ast.unparse(node.func))} at import time")
        return _unknown(f"made at {where} by running `{_short(ast.unparse(node))}` at import time")

    def attr(self, value: _Value, name: str) -> _Value:
        """What ``value.name`` is."""
        if value.kind == "module" and value.module is not None:
            return self.lookup(value.module, name, importing=False)
        if value.kind == "class" and value.cls is not None:
            source, node = value.cls
            bindings = source.class_scope(node).bindings.get(name)
            if not bindings:
                return _unknown(f"{name!r} is not in the body of class {node.name} ({source.label}:{node.lineno}): inherited, or set at run time")
            found = self.one_of(source, bindings, name, node)
            if value.unverified and not found.unverified:
                found = replace(found, unverified=value.unverified)
            return found
        if value.kind == "live":
            return _live(getattr(value.obj, name), f"read from {value.what}")
        if value.kind == "unknown":
            return value
        return _unknown(f"an attribute of {value.what}")

    def instance(self, cls: tuple[_Source, ast.ClassDef], where: str) -> _Value:
        """What an instance of `cls`, made at `where`, is when called."""
        source, node = cls
        bindings = source.class_scope(node).bindings.get("__call__")
        if bindings:
            call = self.one_of(source, bindings, "__call__", node)
            if call.kind == "function" and not call.unverified:
                return _Value("instance", f"{_article(node.name)} {node.name} instance at {where}", callable=True,
                              is_async=call.is_async, type_name=node.name)
            return _unknown(f"an instance of {node.name} at {where}, whose __call__ cannot be read")
        if not node.bases and not node.keywords and not node.decorator_list:
            return _Value("value", f"{_article(node.name)} {node.name} instance at {where}", callable=False, type_name=node.name)
        return _unknown(f"an instance of {node.name} at {where}, whose __call__ may be inherited")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
