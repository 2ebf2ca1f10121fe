"""The validated cache: a playbook or configuration validated once is read back as records.

Validating a document imports pydantic and builds its models (some 150 ms, most of a small run's
start-up); the records it yields depend only on the text, the file's name, the actions' types and
the validating code. So, as Python keeps bytecode in ``__pycache__``, the loader keeps records in
``$ORCHESTRATOR_CACHE`` (default ``$XDG_CACHE_HOME/orchestrator``, ``~/.cache/orchestrator``;
``ORCHESTRATOR_CACHE=off`` turns it off), keyed by a digest of all of those.

- Only a valid document is cached; errors are found again each time (they name the file as it is).
- The key holds the size and modification time of every module that validates (the models, the
  actions and their parameter types, a plugin's module, pydantic's version file): editing one, or
  upgrading, misses.
- The entries' folder is made private (0700) and not used if another user owns it or may write
  to it: a record read back is what runs.
- Entries are pickles read back by an unpickler that builds the record classes and plain values
  only (no other class, no function): a tampered file is refused, not run, and counts as a miss.
  An entry that would hold other classes (a plugin's pydantic parameters) is not written.
- `check` and dry runs read entries and write none (`reading_only`): they leave no file behind.
- Writes are atomic (a temporary file renamed); the least recently used entries beyond
  `MAX_ENTRIES` (256) or `MAX_BYTES` (128 MiB) go, and so do temporary files an hour old (a
  writer killed before its rename).
  Any error reading or writing the cache is a miss, never a failed run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.model.records import Record

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from orchestrator.model.records import R

#: Bumped when the records' shape changes in a way the code stamp would not show.
FORMAT = 1
#: Entries kept, and their size in all: the least recently used beyond either are removed when one
#: is written. A small playbook's entry is a few KiB; a 3,000-step one's 1.5 MiB.
MAX_ENTRIES = 256
MAX_BYTES = 128 * 1024 * 1024
_OFF = frozenset({"off", "0", "false", "no"})
_WRITING = True
#: The modules whose records an entry may hold (any `Record` they define), and the other classes
#: it may be built from: the source map, and YAML's plain values.
_RECORD_MODULES = frozenset({"orchestrator.model.playbook", "orchestrator.config"})
_ALLOWED = {
    "orchestrator.model.source_map": frozenset({"SourceMap"}),
    "builtins": frozenset({"frozenset", "set", "complex"}),
    "datetime": frozenset({"date", "datetime", "time", "timedelta", "timezone"}),
}


def cache_folder() -> Path | None:
    """Where entries are kept, or None when the cache is off."""
    setting = os.environ.get("ORCHESTRATOR_CACHE")
    if setting is not None:
        return None if setting.strip().lower() in _OFF or not setting.strip() else Path(setting)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME and no password entry (a container's arbitrary user): no cache
            return None
    return Path(base) / "orchestrator"


def key(kind: str, file: str, text: str, sources: tuple[str, ...] = ()) -> str:
    """The entry of one document: its kind, file name and text, the validating code as it is,
    and `sources` (where the actions are defined: a file named there counts as it is now)."""
    digest = hashlib.sha256()
    for part in (str(FORMAT), kind, file, _code_stamp(), *(_stamp(s) if os.sep in s else s for s in sources)):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def validated(kind: str, file: str, text: str, made: type[R], validate: Callable[[], R], sources: tuple[str, ...] = ()) -> R:
    """The `made` records of `text` from the cache, else `validate()`'s (kept for the next time)."""
    entry = key(kind, file, text, sources)
    found = get(entry)
    if isinstance(found, made):
        return found
    records = validate()
    put(entry, records)
    return records


def get(entry: str) -> Any | None:
    """The records under `entry`, or None (no entry, cache off, or an entry that is not ours)."""
    folder = cache_folder()
    if folder is None:
        return None
    entries = folder / "validated"
    path = entries / f"{entry}.pickle"
    try:
        if not _private(entries):
            return None
        with open(path, "rb") as stream:
            data = stream.read()
        if _WRITING:
            os.utime(path)  # recently used: kept when older entries are removed
        return _RecordUnpickler(io.BytesIO(data)).load()
    except Exception:  # a missing, unreadable or foreign entry is a miss
        return None


def _private(entries: Path) -> bool:
    """Whether only this user can change the entries: a record read back is what runs, so a
    folder others can write to (or own) is not used, as ssh refuses a key others can read."""
    st = os.stat(entries)
    if not hasattr(os, "getuid"):  # no POSIX owner and mode bits to go by (Windows): the folder's ACL decides
        return True
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


@contextmanager
def reading_only() -> Iterator[None]:
    """Within the block, entries are read but none is written: `check` and dry runs leave no file."""
    global _WRITING
    before, _WRITING = _WRITING, False
    try:
        yield
    finally:
        _WRITING = before


def put(entry: str, records: Any) -> None:
    """Keep `records` under `entry`, if they are made of what an entry may hold."""
    folder = cache_folder()
    if folder is None or not _WRITING:
        return
    try:
        data = pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)
        _RecordUnpickler(io.BytesIO(data)).load()  # what could not be read back is not written
    except Exception:  # e.g. a plugin's parameters of other classes
        return
    try:
        target = folder / "validated"
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _private(target):
            return
        with tempfile.NamedTemporaryFile(dir=target, prefix=".", suffix=".tmp", delete=False) as stream:
            stream.write(data)
        os.replace(stream.name, target / f"{entry}.pickle")
        _prune(target)
    except OSError:
        return


def _prune(folder: Path) -> None:
    """Remove the least recently used entries beyond `MAX_ENTRIES` or `MAX_BYTES`, and temporary files a writer
    killed before its rename left behind (an hour old: no writer takes that long)."""
    entries, stale = [], time.time() - 3600
    for entry in os.scandir(folder):
        if entry.name.endswith(".pickle"):
            entries.append(entry)
        elif entry.name.endswith(".tmp") and entry.stat().st_mtime < stale:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
    entries.sort(key=lambda e: e.stat().st_mtime_ns, reverse=True)  # the most recently used first
    kept = total = 0
    for entry in entries:
        total += entry.stat().st_size
        if kept < MAX_ENTRIES and total <= MAX_BYTES:
            kept += 1
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)


class _RecordUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if name in _ALLOWED.get(module, ()):
            return super().find_class(module, name)
        if module in _RECORD_MODULES:
            found = super().find_class(module, name)
            if isinstance(found, type) and issubclass(found, Record):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a validated record")


_CODE_STAMP: str | None = None


def _code_stamp() -> str:
    """Size and modification time of each module that validates (an upgrade writes them anew)."""
    global _CODE_STAMP
    if _CODE_STAMP is None:
        package = Path(__file__).resolve().parent.parent
        files = sorted(
            entry.path for folder in (package / "model", package / "actions")
            for entry in os.scandir(folder) if entry.name.endswith(".py")
        )
        pydantic = next((Path(p) / "pydantic" / "version.py" for p in sys.path if (Path(p) / "pydantic").is_dir()), None)
        _CODE_STAMP = "|".join([*(_stamp(f) for f in [*files, *([str(pydantic)] if pydantic else [])])])
    return _CODE_STAMP


def _stamp(file: str) -> str:
    try:
        st = os.stat(file)
    except OSError:
        return f"{file}:-"
    return f"{file}:{st.st_size}:{st.st_mtime_ns}"
