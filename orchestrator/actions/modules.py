"""Importing a playbook's own modules (`call: tasks:render`) without moving `sys.path` for good.

"The playbook's folder is importable": a `call:` target is looked up there first, then as any
import. The folder is on `sys.path` only while it is needed, and taken out again after:

- while the planner imports a `call:` module (`import_from`), so the module's top-level imports of
  its neighbours work, and planning (a dry run, `orchestrate check`) leaves `sys.path` as it found it;
- while a run is in progress (`importable`), so a function that imports a neighbour lazily works on
  the event loop and on threads as it does in worker processes, which get the folder on their own
  `sys.path` from the executor (they import the module again to unpickle the callable).

Both are counted per folder under one lock: concurrent plans and runs of playbooks in different
folders each get theirs, and the last one out takes it away.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from types import ModuleType

_lock = threading.RLock()
_added: Counter[str] = Counter()  # folders we put on sys.path, by how many users hold them there


def import_from(module_name: str, folder: Path | None) -> ModuleType:
    """Import `module_name`, its top-level package looked up in `folder` first when given."""
    if folder is None:
        return importlib.import_module(module_name)
    with _lock, importable(folder):
        return importlib.import_module(module_name)


@contextlib.contextmanager
def importable(folder: Path) -> Iterator[None]:
    """`folder` at the front of `sys.path` for the block, unless it was there already."""
    entry = str(folder)
    with _lock:
        if _added[entry] or entry not in sys.path:
            if not _added[entry]:
                sys.path.insert(0, entry)
            _added[entry] += 1
            ours = True
        else:
            ours = False
    try:
        yield
    finally:
        if ours:
            with _lock:
                _added[entry] -= 1
                if not _added[entry]:
                    del _added[entry]
                    with contextlib.suppress(ValueError):  # something else took it out
                        sys.path.remove(entry)
