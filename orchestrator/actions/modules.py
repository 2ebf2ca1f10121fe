"""Importing a playbook's own modules (`call: tasks:render`) at run time, without moving `sys.path`
for good and without letting them shadow anything installed.

"The playbook's folder is importable": while a run whose plan has `call:` steps is in progress
(`importable`), the folder is on `sys.path`, so the run imports `tasks` from `tasks.py` beside the
playbook, and a function that imports a neighbour lazily works on the event loop and on threads as
it does in worker processes (they get the folder from the executor, and import the module again to
unpickle the callable).

The folder is put at the **end** of `sys.path`: a stray ``aiohttp.py`` or ``yaml.py`` beside a
playbook is never imported in place of the library the engine (or a `call:` function) imports. A
`call:` target's own module beside the playbook that has an installed module's name is refused
when the plan is made (`source_check.Shadows`), so the folder coming last never changes which
module a `call:` step gets.

Planning imports nothing (`source_check` reads the source), so it leaves `sys.path` alone. The
folder's presence is counted per folder under one lock: concurrent runs of playbooks in different
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
    """Import `module_name` (running its code), `folder` on `sys.path` meanwhile when given."""
    if folder is None:
        return importlib.import_module(module_name)
    with _lock, importable(folder):
        return importlib.import_module(module_name)


@contextlib.contextmanager
def importable(folder: Path) -> Iterator[None]:
    """`folder` at the end of `sys.path` for the block, unless it was there already."""
    entry = str(folder)
    with _lock:
        if _added[entry] or entry not in sys.path:
            if not _added[entry]:
                sys.path.append(entry)
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
