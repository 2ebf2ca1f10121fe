"""Run history: every run the CLI makes, recorded in a SQLite file as it goes.

`RunJournal` is a reporter. It writes the run when it starts (status ``running``, with the process
id), each step when it ends, and the run's status when it ends, each write its own transaction in
WAL mode. A run that fails or is interrupted therefore leaves a complete record, and one that is
killed leaves the steps that had ended and a run still marked ``running``, which `list_runs` shows
as ``abandoned`` once its process is gone. `orchestrate runs` reads the file.

Where: ``history.path`` in the configuration, else ``$ORCHESTRATOR_HISTORY``, else
``$XDG_STATE_HOME/orchestrator/runs.sqlite`` (``~/.local/state/...``). ``ORCHESTRATOR_HISTORY=off``
or ``history.enabled: false`` records nothing; dry runs never record. The library records only when given a journal:
``orchestrator.run(plan, reporter=RunJournal(path))``.

The file is private to the user: created with mode 0600 (SQLite gives its ``-wal`` and ``-shm``
files the same mode) in a folder created with mode 0700. An existing file or folder keeps its mode.
What is recorded is masked already: a run gives its reporters results with its secrets masked.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.engine.events import Reporter

if TYPE_CHECKING:
    from collections.abc import Iterator

    from orchestrator.engine.results import RunResult, StepResult
    from orchestrator.planner import Plan, PlannedStep

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
"""


def history_path(configured: str | None = None, enabled: bool = True) -> Path | None:
    """Where the CLI records runs: the configured path, else ``$ORCHESTRATOR_HISTORY``, else the
    XDG state folder. None when recording is off (``enabled`` false or ``ORCHESTRATOR_HISTORY=off``)."""
    env = os.environ.get("ORCHESTRATOR_HISTORY", "").strip()
    if not enabled or env.lower() == OFF:
        return None
    chosen = configured or env
    if chosen:
        return Path(chosen).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "orchestrator" / "runs.sqlite"


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path, timeout=10.0, isolation_level=None)) as db:
        db.execute("PRAGMA busy_timeout = 10000")  # another run writing the same file
        yield db


def _create_private(path: Path) -> None:
    """The history's folder (0700) and file (0600), when absent; existing ones keep their modes."""
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # (parents above it: the usual mode)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _open(path: Path) -> sqlite3.Connection:
    _create_private(path)
    db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")  # readers never block the run; a crash keeps what was committed
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(_SCHEMA)
    return db


class HistoryUnavailable(Exception):
    """The history file cannot be opened or written; the run goes on unrecorded."""


class RunJournal(Reporter):
    """Records one run at a time in the SQLite file at `path` (created with its folders)."""

    def __init__(self, path: str | os.PathLike[str], keep: int | None = None) -> None:
        self.path = Path(path)
        self.keep = keep  # the newest `keep` runs stay when a run starts; None keeps every run
        self._db: sqlite3.Connection | None = None
        self._run_id: str | None = None

    def run_started(self, plan: Plan, run_id: str) -> None:
        try:
            self._db = _open(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryUnavailable(f"cannot record the run in {self.path}: {exc}") from None
        self._run_id = run_id
        steps = len(plan.steps) + len(plan.rollback) + len(plan.finally_)
        path = getattr(plan.playbook, "path", None)
        with self._db:
            self._db.execute(
                "INSERT INTO runs (run_id, playbook, path, status, started_at, steps, pid, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, plan.playbook.name, str(path) if path else None, "running", time.time(), steps, os.getpid(), socket.gethostname()),
            )
            if self.keep is not None:
                _prune(self._db, self.keep)

    def step_finished(self, step: PlannedStep, result: StepResult) -> None:
        if self._db is None:
            return
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _step_row(self._run_id, result, time.time()),
            )

    def run_finished(self, result: RunResult) -> None:
        db, self._db = self._db, None
        if db is None:
            return
        now = time.time()
        with closing(db), db:
            # Steps that ended without running (rollback not needed, steps never reached) complete the record.
            db.executemany(
                "INSERT OR IGNORE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_step_row(result.run_id, s, now) for s in result.steps],
            )
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, duration_s = ? WHERE run_id = ?",
                (result.status, now, result.duration_s, result.run_id),
            )


    def cut_short(self) -> None:
        """Record the run as interrupted now, from a process about to exit without finishing it
        (a second Ctrl-C): otherwise it would show as abandoned, as if the controller had died."""
        db, self._db = self._db, None
        if db is None:
            return
        with closing(db), db:
            db.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ? WHERE run_id = ?", (time.time(), self._run_id)
            )


def _prune(db: sqlite3.Connection, keep: int) -> None:
    """Forget all but the newest `keep` runs (a run still marked running stays: it may be going on)."""
    old = "SELECT run_id FROM runs WHERE status != 'running' AND run_id NOT IN (SELECT run_id FROM runs ORDER BY started_at DESC LIMIT ?)"
    db.execute(f"DELETE FROM steps WHERE run_id IN ({old})", (keep,))
    db.execute(f"DELETE FROM runs WHERE run_id IN ({old})", (keep,))


def _step_row(run_id: str | None, r: StepResult, now: float) -> tuple[Any, ...]:
    return (run_id, r.id, r.section, r.kind, r.executor, r.status, r.attempts, r.retries, r.items, r.items_failed,
            r.duration_s, r.error, now)


@dataclass(frozen=True)
class RunRecord:
    """One recorded run, as `orchestrate runs` shows it."""

    run_id: str
    playbook: str
    path: str | None
    status: str
    started_at: float
    finished_at: float | None
    duration_s: float | None
    steps: int
    steps_ended: int
    failed: str | None

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "playbook": self.playbook, "path": self.path, "status": self.status,
            "started_at": _iso(self.started_at), "finished_at": _iso(self.finished_at) if self.finished_at else None,
            "duration_s": round(self.duration_s, 4) if self.duration_s is not None else None,
            "steps": self.steps, "steps_ended": self.steps_ended, "failed_step": self.failed,
        }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts))


def _alive(pid: int, host: str) -> bool:
    if host != socket.gethostname():
        return True  # another machine's run: cannot tell, so trust its record
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_RUNS_QUERY = """
SELECT r.run_id, r.playbook, r.path, r.status, r.started_at, r.finished_at, r.duration_s, r.steps, r.pid, r.host,
       (SELECT COUNT(*) FROM steps s WHERE s.run_id = r.run_id),
       (SELECT s.step_id FROM steps s WHERE s.run_id = r.run_id AND s.status = 'failed' ORDER BY s.finished_at LIMIT 1)
FROM runs r
"""


def _record(row: tuple[Any, ...]) -> RunRecord:
    run_id, playbook, path, status, started, finished, duration, steps, pid, host, ended, failed = row
    if status == "running" and not _alive(pid, host):
        status = "abandoned"  # its process is gone without saying how the run ended
    return RunRecord(run_id, playbook, path, status, started, finished, duration, steps, ended, failed)


def list_runs(path: str | os.PathLike[str], limit: int = 20) -> list[RunRecord]:
    """The latest `limit` runs, newest first. An absent file has none."""
    if not Path(path).exists():
        return []
    with _connect(Path(path)) as db:
        rows = db.execute(_RUNS_QUERY + " ORDER BY r.started_at DESC LIMIT ?", (limit,)).fetchall()
    return [_record(row) for row in rows]


def find_run(path: str | os.PathLike[str], run_id: str) -> tuple[RunRecord, list[dict[str, Any]]] | None:
    """A run and its ended steps (in the order they ended), by id or by a unique prefix of it."""
    if not Path(path).exists():
        return None
    with _connect(Path(path)) as db:
        rows = db.execute(_RUNS_QUERY + " WHERE r.run_id = ?", (run_id,)).fetchall() or db.execute(
            _RUNS_QUERY + " WHERE substr(r.run_id, 1, ?) = ? LIMIT 2", (len(run_id), run_id)
        ).fetchall()
        if len(rows) != 1:
            return None  # none, or a prefix of several
        run = _record(rows[0])
        cursor = db.execute("SELECT * FROM steps WHERE run_id = ? ORDER BY finished_at", (run.run_id,))
        names = [d[0] for d in cursor.description]
        steps = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for step in steps:
        del step["run_id"]
        step["finished_at"] = _iso(step["finished_at"])
        step["duration_s"] = round(step["duration_s"], 4)
    return run, steps
