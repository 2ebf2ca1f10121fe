"""Importing a playbook's own modules (`call: tasks:render`) without moving `sys.path` for good.

"The playbook's folder is importable": a `call:` target is looked up there first, then as any
import. The folder is put at the front of `sys.path` only while such an import runs (so the module's
own imports of its neighbours work) and taken out again after, under a lock: planning a playbook
leaves `sys.path` as it found it, and two plans of playbooks in different folders do not see each
other's folders. Worker processes get the folder on their `sys.path` from the executor, since they
import the module again to unpickle the callable.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from pathlib import Path
from types import ModuleType

_lock = threading.RLock()


def import_from(module_name: str, folder: Path | None) -> ModuleType:
    """Import `module_name`, its top-level package looked up in `folder` first when given."""
    if folder is None:
        return importlib.import_module(module_name)
    entry = str(folder)
    with _lock:
        added = entry not in sys.path
        if added:
            sys.path.insert(0, entry)
        try:
            return importlib.import_module(module_name)
        finally:
            if added:
                with contextlib.suppress(ValueError):  # the module took it out itself
                    sys.path.remove(entry)
