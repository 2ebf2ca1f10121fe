"""What a name is: a `Reader` follows a `call:` target from name to binding, through imports,
star imports, assignments and class bodies, to a `Value` that says whether it is callable, a
coroutine function and picklable, or why only running code could tell. The `Reader` class is
about 350 lines by itself and kept one piece: its methods recurse into each other (a name leads to
an import, which leads to a module's names, which lead to names again) and share one look-up's
state (the files read, the names being resolved), so a split would cut that cycle in two."""

from __future__ import annotations

import ast
import builtins
import importlib.machinery
import importlib.util
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from orchestrator.actions.source_check.locate import MissingImport, Module, elsewhere, find_in_dirs, stamp
from orchestrator.actions.source_check.scope import Source
from orchestrator.actions.source_check.value import Value, article, live_value, short, unknown

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from pathlib import Path

    from orchestrator.actions.source_check.scope import Binding

_LITERALS: dict[type[ast.AST], str] = {
    ast.List: "list", ast.Tuple: "tuple", ast.Dict: "dict", ast.Set: "set", ast.JoinedStr: "str",
    ast.ListComp: "list", ast.SetComp: "set", ast.DictComp: "dict", ast.GeneratorExp: "generator",
}
_METHOD_DECORATORS = frozenset({"staticmethod", "classmethod"})
_MAX_DEPTH = 64

_PARSED: dict[tuple[str, str], tuple[int, int, Source]] = {}


class Reader:
    """One look-up: the modules it located and read (for `Found.stamps`), and what it is resolving
    (so a name bound to itself through imports ends as unknown rather than in a loop)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder.resolve() if folder is not None else None
        self.read: dict[str, tuple[int, int]] = {}
        self.resolving: set[tuple[str, str]] = set()

    # modules

    def locate(self, name: str, *, folder_first: bool) -> Module:
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
            spec = find_in_dirs(top, [str(folder)])
            in_folder = spec is not None
        if spec is None:
            spec = elsewhere(top, folder)
            if spec is None and top in sys.modules:  # e.g. __main__, found by no finder
                spec = getattr(sys.modules[top], "__spec__", None)
        if spec is None and folder is not None and not folder_first:
            spec = find_in_dirs(top, [str(folder)])
            in_folder = spec is not None
        if spec is None:
            raise ModuleNotFoundError(f"No module named {top!r}", name=top)
        module = Module(top, spec, in_folder)
        for part in parts[1:]:
            module = self.submodule(module, part)
        return module

    def submodule(self, parent: Module, part: str) -> Module:
        full = f"{parent.name}.{part}"
        locations = parent.spec.submodule_search_locations
        if locations is None:
            if not parent.in_folder and full in sys.modules:
                return Module(full, sys.modules[full].__spec__ or parent.spec, False)
            raise ModuleNotFoundError(f"No module named {full!r}; {parent.name!r} is not a package", name=full)
        if parent.in_folder:
            spec = find_in_dirs(full, list(locations))
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
        return Module(full, spec, parent.in_folder)

    def imported(self, source: Source, module: str | None, level: int) -> Module:
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
        top_in_folder = self.folder is not None and find_in_dirs(full.partition(".")[0], [str(self.folder)]) is not None
        return self.locate(full, folder_first=top_in_folder)

    def source(self, module: Module) -> Source | None:
        """The module's parsed source; an empty one for a namespace package; None when it has no
        Python source."""
        if module.is_namespace:
            return Source(module.name, True, None, ast.Module(body=[], type_ignores=[]))
        path = module.source
        if path is None:
            return None
        key = (str(path), module.name)
        _, mtime, size = stamp(str(path))
        self.read[str(path)] = (mtime, size)
        hit = _PARSED.get(key)
        if hit is not None and hit[:2] == (mtime, size):
            return hit[2]
        tree = ast.parse(importlib.util.decode_source(path.read_bytes()), str(path))
        parsed = Source(module.name, module.is_package, path, tree)
        if len(_PARSED) > 512:
            _PARSED.clear()
        _PARSED[key] = (mtime, size, parsed)
        return parsed

    def check_imports(self, source: Source, *, relative: bool) -> None:
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
        if top in sys.modules or elsewhere(top, self.folder) is not None:
            return
        if self.folder is not None and find_in_dirs(top, [str(self.folder)]) is not None:
            return
        raise MissingImport(top, where)

    # names

    def lookup(self, module: Module, name: str, *, importing: bool) -> Value:
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
            return unknown(f"module {module.name!r} is not Python source ({where}), so {name!r} is looked up at run time")
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

    def _submodule_value(self, module: Module, name: str, importing: bool) -> Value | None:
        if not module.is_package:
            return None
        try:
            sub = self.submodule(module, name)
        except ModuleNotFoundError:
            return None
        unverified = "" if importing else f"{sub.name} is a submodule: an attribute of {module.name} only once imported"
        return Value("module", f"the module {sub.name}", unverified=unverified, callable=False, type_name="module", module=sub)

    def live(self, module: Module, name: str) -> Value | None:
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
            return live_value(namespace[name], f"read from {module.name}, imported already")
        if "__getattr__" in namespace:
            return None
        raise AttributeError(f"module {module.name!r} has no attribute {name!r}")

    def name_in(self, source: Source, name: str) -> Value:
        """What the top-level name `name` of `source` is. Raises AttributeError when it is not there."""
        key = (source.name, name)
        if key in self.resolving or len(self.resolving) > _MAX_DEPTH:
            return unknown(f"{name!r} in {source.label} refers to itself through other names")
        self.resolving.add(key)
        try:
            bindings = source.scope.bindings.get(name)
            if not bindings:
                star = self.from_stars(source, name)
                if star is not None:
                    return star
                if source.dynamic:
                    return unknown(f"{name!r} is not bound in {source.label}, which may make names at import time ({source.dynamic})")
                raise AttributeError(f"module {source.name!r} has no attribute {name!r}")
            return self.one_of(source, bindings, name, None)
        finally:
            self.resolving.discard(key)

    def one_of(self, source: Source, bindings: list[Binding], name: str, in_class: ast.ClassDef | None) -> Value:
        """What a name bound by `bindings` is: the last one, when they all agree on what it is."""
        if len(bindings) == 1:
            return self.classify(source, bindings[0], in_class)
        values = []
        for binding in bindings:
            try:
                values.append(self.classify(source, binding, in_class))
            except (AttributeError, ModuleNotFoundError):
                values.append(unknown("not found"))
        last = values[-1]
        if any((v.callable, v.is_async) != (last.callable, last.is_async) or v.kind == "unknown" for v in values):
            lines = ", ".join(str(b.stmt.lineno) for b in bindings)
            return unknown(f"{name!r} is bound in more than one way in {source.label} (lines {lines})")
        return last

    def classify(self, source: Source, binding: Binding, in_class: ast.ClassDef | None) -> Value:
        stmt, value = binding.stmt, binding.value
        where = f"{source.label}:{stmt.lineno}"
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            decorators = [d for d in stmt.decorator_list if not (in_class is not None and ast.unparse(d) in _METHOD_DECORATORS)]
            assumed = f"{stmt.name} at {where} is decorated with @{short(ast.unparse(decorators[0]))}, which may return anything" if decorators else ""
            coroutine = isinstance(stmt, ast.AsyncFunctionDef)
            return Value(
                "function", f"{'an async def' if coroutine else 'a def'} at {where}", unverified=assumed, callable=True,
                is_async=coroutine, picklable=None if decorators else True,
            )
        if isinstance(stmt, ast.ClassDef):
            assumed = f"class {stmt.name} at {where} is decorated with @{short(ast.unparse(stmt.decorator_list[0]))}" if stmt.decorator_list else ""
            return Value(
                "class", f"a class at {where}", unverified=assumed, callable=True,
                picklable=None if stmt.decorator_list else True, cls=(source, stmt),
            )
        if isinstance(value, ast.alias):
            return self.imported_name(source, stmt, value, binding.conditional)
        if value is None:
            return unknown(f"bound at {where} by running code")
        if in_class is not None and not isinstance(value, ast.Lambda | ast.Constant) and type(value) not in _LITERALS:
            return unknown(f"bound in the body of class {in_class.name} at {where} by running code")
        return self.expr(source, value, where)

    def imported_name(self, source: Source, stmt: ast.stmt, alias: ast.alias, conditional: bool) -> Value:
        where = f"{source.label}:{stmt.lineno}"
        if isinstance(stmt, ast.Import):
            name = alias.name if alias.asname else alias.name.partition(".")[0]
            try:
                module = self.locate(name, folder_first=False)
            except ModuleNotFoundError:
                return unknown(f"{where} imports {name!r}, which is not found")
            return Value("module", f"the module {name}", callable=False, type_name="module", module=module)
        assert isinstance(stmt, ast.ImportFrom)
        try:
            module = self.imported(source, stmt.module, stmt.level)
        except ModuleNotFoundError:
            return unknown(f"{where} imports from {stmt.module!r}, which is not found")
        try:
            return self.lookup(module, alias.name, importing=True)
        except AttributeError:
            if conditional:
                return unknown(f"{where} imports {alias.name!r} from {module.name!r}, which has no such name")
            raise AttributeError(f"{where} imports {alias.name!r} from {module.name!r}, which has no such name") from None

    def from_stars(self, source: Source, name: str) -> Value | None:
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
                return unknown(f"{where} imports * from {module.name!r}, which is not Python source")
            exported = star.all_names
            if (exported is not None and name not in exported) or (exported is None and name.startswith("_")):
                continue
            try:
                return self.name_in(star, name)
            except AttributeError:
                continue
        return None

    def expr(self, source: Source, node: ast.expr, where: str) -> Value:
        """What the expression bound to a name is."""
        if isinstance(node, ast.Lambda):
            return Value("lambda", f"a lambda at {where}", callable=True, picklable=False)
        if isinstance(node, ast.Constant):
            type_name = type(node.value).__name__
            return Value("value", f"{article(type_name)} {type_name} at {where}", callable=False, type_name=type_name)
        literal = _LITERALS.get(type(node))
        if literal is not None:
            return Value("value", f"{article(literal)} {literal} at {where}", callable=False, type_name=literal)
        if isinstance(node, ast.Name):
            try:
                return self.name_in(source, node.id)
            except AttributeError:
                if hasattr(builtins, node.id):
                    return live_value(getattr(builtins, node.id), "from builtins")
                return unknown(f"{node.id!r} at {where} is not bound at the module's top level")
        if isinstance(node, ast.Attribute):
            return self.attr(self.expr(source, node.value, where), node.attr)
        if isinstance(node, ast.Call):
            try:
                func = self.expr(source, node.func, where)
            except (AttributeError, ModuleNotFoundError):
                func = unknown("")
            if func.kind == "class" and func.cls is not None and not func.unverified:
                return self.instance(func.cls, where)
            return unknown(f"made at {where} by calling {short(ast.unparse(node.func))} at import time")
        return unknown(f"made at {where} by running `{short(ast.unparse(node))}` at import time")

    def attr(self, value: Value, name: str) -> Value:
        """What ``value.name`` is."""
        if value.kind == "module" and value.module is not None:
            return self.lookup(value.module, name, importing=False)
        if value.kind == "class" and value.cls is not None:
            source, node = value.cls
            bindings = source.class_scope(node).bindings.get(name)
            if not bindings:
                return unknown(f"{name!r} is not in the body of class {node.name} ({source.label}:{node.lineno}): inherited, or set at run time")
            found = self.one_of(source, bindings, name, node)
            if value.unverified and not found.unverified:
                found = replace(found, unverified=value.unverified)
            return found
        if value.kind == "live":
            return live_value(getattr(value.obj, name), f"read from {value.what}")
        if value.kind == "unknown":
            return value
        return unknown(f"an attribute of {value.what}")

    def instance(self, cls: tuple[Source, ast.ClassDef], where: str) -> Value:
        """What an instance of `cls`, made at `where`, is when called."""
        source, node = cls
        bindings = source.class_scope(node).bindings.get("__call__")
        if bindings:
            call = self.one_of(source, bindings, "__call__", node)
            if call.kind == "function" and not call.unverified:
                return Value("instance", f"{article(node.name)} {node.name} instance at {where}", callable=True,
                              is_async=call.is_async, type_name=node.name)
            return unknown(f"an instance of {node.name} at {where}, whose __call__ cannot be read")
        if not node.bases and not node.keywords and not node.decorator_list:
            return Value("value", f"{article(node.name)} {node.name} instance at {where}", callable=False, type_name=node.name)
        return unknown(f"an instance of {node.name} at {where}, whose __call__ may be inherited")
