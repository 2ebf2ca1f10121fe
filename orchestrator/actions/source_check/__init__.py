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

import pickle
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.actions.source_check.locate import MissingImport, elsewhere, same_file, stamp, top_file
from orchestrator.actions.source_check.reader import Reader
from orchestrator.actions.source_check.value import is_async

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

    from orchestrator.actions.source_check.value import Value

__all__ = ["Found", "MissingImport", "Shadows", "find", "is_async"]


class Shadows(Exception):
    """The target's module beside the playbook has the name of an installed module."""

    def __init__(self, file: Path, name: str, installed: str) -> None:
        super().__init__(
            f"{file} beside the playbook has the name of the installed module {name!r} ({installed}); "
            f"modules beside a playbook never shadow installed ones: rename {file.name}"
        )
        self.file = file


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
        return all(stamp(path) == (path, mtime, size) for path, mtime, size in self.stamps)

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
            if loaded is None or not same_file(loaded, self.module_file):
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
    reader = Reader(folder)
    module = reader.locate(module_name, folder_first=True)
    if module.in_folder and reader.folder is not None:
        top = module_name.partition(".")[0]
        installed = elsewhere(top, reader.folder)
        if installed is not None:
            raise Shadows(top_file(reader.folder, top), top, installed.origin or "built in")
    source = reader.source(module)
    if source is not None:
        reader.check_imports(source, relative=module.in_folder)
    value: Value | None = None
    for part in attr.split("."):
        value = reader.lookup(module, part, importing=False) if value is None else reader.attr(value, part)
    assert value is not None
    stamps = [(p, mtime, size) for p, (mtime, size) in reader.read.items()]
    if reader.folder is not None:
        stamps.append(stamp(str(reader.folder)))
    return Found(
        target, value.callable, value.is_async, value.picklable, value.what or "a callable", value.unverified,
        module_file=module.source if module.in_folder else None, live=value.obj, stamps=tuple(stamps),
    )
