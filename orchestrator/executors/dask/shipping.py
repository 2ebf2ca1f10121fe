"""What of a playbook's folder reaches the Dask workers: its importable modules, packed by content.

A `call:` step's callable is pickled by reference (``tasks:fingerprint`` travels as the names
``tasks`` and ``fingerprint``), so a worker must import ``tasks`` to run it. The folder's top-level
modules (``tasks.py``) and packages (a folder with ``__init__.py``, every file in it: templates and
data files that the package reads beside its code) are zipped in a fixed order with fixed
timestamps, so the same sources always give the same bytes and the same key: a cluster receives each
version once, whatever the number of runs. Nothing else of the folder is sent (the playbook, data
files beside it, hidden folders, ``__pycache__``).

This module reads files and imports nothing of the playbook's, so planning can say what will be
shipped (`importable_modules`) without running any of it; `distributed` is not imported here.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.errors import ExecutorUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

#: More than this is not a playbook's helper code: refuse it instead of sending it to every worker.
MAX_BYTES = 32 * 1024 * 1024
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the same bytes whatever the files' mtimes


@dataclass(frozen=True)
class Shipment:
    """The packed modules of one folder: `key` names the content (a hex digest)."""

    key: str
    data: bytes
    modules: tuple[str, ...]


def importable_modules(folder: Path) -> tuple[str, ...]:
    """The top-level names `import` finds in `folder`: ``name.py`` files and packages, sorted."""
    names = set()
    for entry in _entries(folder):
        names.add(entry.stem if entry.is_file() else entry.name)
    return tuple(sorted(names))


def pack(folder: Path) -> Shipment:
    """Zip the importable modules of `folder`, deterministically. Raises ExecutorUnavailable when
    they add up to more than `MAX_BYTES`."""
    files = sorted((path.relative_to(folder).as_posix(), path) for path in _files(folder))
    size = sum(path.stat().st_size for _, path in files)
    if size > MAX_BYTES:
        raise ExecutorUnavailable(
            f"the modules beside the playbook in {folder} add up to {size / 2**20:.0f} MiB, more than the "
            f"{MAX_BYTES // 2**20} MiB sent to Dask workers; install large packages on the workers instead"
        )
    buffer = io.BytesIO()
    import zipfile  # only when a run ships a folder to Dask workers

    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in files:
            info = zipfile.ZipInfo(name, _EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    data = buffer.getvalue()
    return Shipment(hashlib.sha256(data).hexdigest()[:20], data, importable_modules(folder))


def _entries(folder: Path) -> Iterator[Path]:
    for entry in sorted(folder.iterdir()):
        module = entry.is_file() and entry.suffix == ".py" and entry.stem.isidentifier()
        package = entry.is_dir() and entry.name.isidentifier() and entry.name != "__pycache__" and (entry / "__init__.py").is_file()
        if module or package:  # hidden folders and names `import` cannot reach are left out
            yield entry


def _files(folder: Path) -> Iterator[Path]:
    for entry in _entries(folder):
        if entry.is_file():
            yield entry
            continue
        for path in sorted(entry.rglob("*")):
            parts = path.relative_to(entry).parts
            if path.is_file() and not any(p.startswith(".") or p == "__pycache__" for p in parts) and path.suffix != ".pyc":
                yield path
