"""The history file: where it is, its tables, and opening it private to the user.

Where: ``history.path`` in the configuration, else ``$ORCHESTRATOR_HISTORY``, else
``$XDG_STATE_HOME/orchestrator/runs.sqlite`` (``~/.local/state/...``). ``ORCHESTRATOR_HISTORY=off``
or ``history.enabled: false`` records nothing.

The file is created with mode 0600 (SQLite gives its ``-wal`` and ``-shm`` files the same mode) in
a folder created with mode 0700; an existing file or folder keeps its mode. It is in WAL mode with
``synchronous = NORMAL``: a commit is in the file once it returns, so it survives the death of the
process that made it (kill -9 included); only a crash of the machine itself may lose the last ones.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

OFF = "off"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, playbook TEXT NOT NULL, path TEXT, status TEXT NOT NULL,
    started_at REAL NOT NULL, finished_at REAL, duration_s REAL, steps INTEGER NOT NULL,
    pid INTEGER NOT NULL, host TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs (run_id), step_id TEXT NOT NULL, section TEXT NOT NULL,
    kind TEXT NOT NULL, executor TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
    retries INTEGER NOT NULL, items INTEGER, items_failed INTEGER NOT NULL, duration_s REAL NOT NULL,
    error TEXT, finished_at REAL NOT NULL, PRIMARY KEY (run_id, step_id)
);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_at);
CREATE TABLE IF NOT EXISTS items (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, generation INTEGER NOT NULL,
    start INTEGER NOT NULL, stop INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_step ON items (run_id, step_id, generation);
CREATE TABLE IF NOT EXISTS item_outputs (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, generation INTEGER NOT NULL, outputs TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS item_outputs_by_step ON item_outputs (run_id, step_id, generation);
CREATE TABLE IF NOT EXISTS timeline (
    run_id TEXT NOT NULL, what TEXT NOT NULL, step_id TEXT, item INTEGER, lane TEXT,
    start REAL NOT NULL, end REAL NOT NULL, status TEXT, detail TEXT
);
CREATE INDEX IF NOT EXISTS timeline_by_run ON timeline (run_id, start);
CREATE TABLE IF NOT EXISTS advice (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, tagged TEXT NOT NULL, suggested TEXT NOT NULL, evidence TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS advice_by_run ON advice (run_id);
"""

#: Columns added since the first version of the file: added to an older file when it is opened.
_ADDED = (
    # The run's inputs (playbook file and digest, variables given, configuration) as JSON: what a resume replans from.
    ("runs", "inputs", "TEXT"),
    # Times the run's work was undone by rollback and started again (part of every Idempotency-Key).
    ("runs", "generation", "INTEGER NOT NULL DEFAULT 0"),
    # Times the run was started: 1, plus one per resume.
    ("runs", "starts", "INTEGER NOT NULL DEFAULT 1"),
    # A step's output as JSON, kept when a template may read it (a resumed run feeds it to them).
    ("steps", "output", "TEXT"),
    ("steps", "generation", "INTEGER NOT NULL DEFAULT 0"),
    # When the step started (Unix time; NULL if it never did): `orchestrator/history/timeline.py`.
    ("steps", "started_at", "REAL"),
)


def history_path(configured: str | None = None, enabled: bool = True) -> Path | None:
    """Where the CLI records runs: the configured path, else ``$ORCHESTRATOR_HISTORY``, else the
    XDG state folder. None when recording is off (``enabled`` false or ``ORCHESTRATOR_HISTORY=off``).
    Raises HistoryUnavailable when none is set and there is no home folder to find the state folder in."""
    env = os.environ.get("ORCHESTRATOR_HISTORY", "").strip()
    if not enabled or env.lower() == OFF:
        return None
    chosen = configured or env
    if chosen:
        return Path(chosen).expanduser()
    state = os.environ.get("XDG_STATE_HOME")
    if not state:
        try:
            state = str(Path.home() / ".local" / "state")
        except RuntimeError:  # no HOME and no password entry: a container's arbitrary user
            raise HistoryUnavailable(
                "no home folder to keep the run history in (HOME is not set and the user has no password entry): "
                "set ORCHESTRATOR_HISTORY=FILE, or ORCHESTRATOR_HISTORY=off"
            ) from None
    return Path(state) / "orchestrator" / "runs.sqlite"


class HistoryUnavailable(Exception):
    """The history file cannot be opened or written; the run goes on unrecorded."""


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection for reading (and the short writes of a resume claiming its run)."""
    with closing(sqlite3.connect(path, timeout=10.0, isolation_level=None)) as db:
        db.execute("PRAGMA busy_timeout = 10000")  # another run writing the same file
        _upgrade(db)
        yield db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One transaction, committed at the end of the block (rolled back if it raises). The
    connections here are in autocommit mode, where `with db:` would commit each row of an
    `executemany` on its own: 30 µs a row here, against 2 µs in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def open_for_writing(path: Path) -> sqlite3.Connection:
    """The file opened (created private, with its tables, when absent) for a run to record itself."""
    _create_private(path)
    db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 10000")
    db.execute("PRAGMA journal_mode = WAL")  # readers never block the run; a crash keeps what was committed
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(_SCHEMA)
    _upgrade(db)
    return db


def _upgrade(db: sqlite3.Connection) -> None:
    """Add the columns an older file lacks (a file with no tables yet is left alone)."""
    for table, column, declaration in _ADDED:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if present and column not in present:
            try:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):  # another process added it meanwhile: fine
                    raise


def _create_private(path: Path) -> None:
    """The history's folder (0700) and file (0600), when absent; existing ones keep their modes."""
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # (parents above it: the usual mode)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
