"""Reading the history back: the recorded runs, newest first, and one run's steps."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.history.store import connect

#: What a run can be resumed from: it ended without succeeding, or its controller died.
RESUMABLE = ("failed", "interrupted", "abandoned")


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
    #: Whether `orchestrate resume` can continue it (it did not succeed, and its inputs are recorded).
    resumable: bool = False
    #: Times it was started: 1, plus one per resume.
    starts: int = 1

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "playbook": self.playbook, "path": self.path, "status": self.status,
            "started_at": _iso(self.started_at), "finished_at": _iso(self.finished_at) if self.finished_at else None,
            "duration_s": round(self.duration_s, 4) if self.duration_s is not None else None,
            "steps": self.steps, "steps_ended": self.steps_ended, "failed_step": self.failed,
            "resumable": self.resumable, "starts": self.starts,
        }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts))


def alive(pid: int, host: str) -> bool:
    """Whether the process that recorded a run is still there (a run on another host: assumed so)."""
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
       (SELECT s.step_id FROM steps s WHERE s.run_id = r.run_id AND s.status = 'failed' ORDER BY s.finished_at LIMIT 1),
       r.inputs IS NOT NULL, r.starts
FROM runs r
"""


def _record(row: tuple[Any, ...]) -> RunRecord:
    run_id, playbook, path, status, started, finished, duration, steps, pid, host, ended, failed, has_inputs, starts = row
    if status == "running" and not alive(pid, host):
        status = "abandoned"  # its process is gone without saying how the run ended
    resumable = bool(has_inputs) and status in RESUMABLE
    return RunRecord(run_id, playbook, path, status, started, finished, duration, steps, ended, failed, resumable, starts)


def list_runs(path: str | os.PathLike[str], limit: int = 20) -> list[RunRecord]:
    """The latest `limit` runs, newest first. An absent file has none."""
    if not Path(path).exists():
        return []
    with connect(Path(path)) as db:
        rows = db.execute(_RUNS_QUERY + " ORDER BY r.started_at DESC LIMIT ?", (limit,)).fetchall()
    return [_record(row) for row in rows]


def find_record(db: Any, run_id: str) -> RunRecord | None:
    """A run by id or by a unique prefix of it, on an open connection."""
    rows = db.execute(_RUNS_QUERY + " WHERE r.run_id = ?", (run_id,)).fetchall() or db.execute(
        _RUNS_QUERY + " WHERE substr(r.run_id, 1, ?) = ? LIMIT 2", (len(run_id), run_id)
    ).fetchall()
    return _record(rows[0]) if len(rows) == 1 else None  # none, or a prefix of several


def find_run(path: str | os.PathLike[str], run_id: str) -> tuple[RunRecord, list[dict[str, Any]]] | None:
    """A run and its ended steps (in the order they ended), by id or by a unique prefix of it."""
    if not Path(path).exists():
        return None
    with connect(Path(path)) as db:
        run = find_record(db, run_id)
        if run is None:
            return None
        cursor = db.execute(
            "SELECT step_id, section, kind, executor, status, attempts, retries, items, items_failed, duration_s, "
            "error, finished_at FROM steps WHERE run_id = ? ORDER BY finished_at",
            (run.run_id,),
        )
        names = [d[0] for d in cursor.description]
        steps = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for step in steps:
        step["finished_at"] = _iso(step["finished_at"])
        step["duration_s"] = round(step["duration_s"], 4)
    return run, steps
