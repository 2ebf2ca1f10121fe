"""`RunJournal`: a run recorded in the history file as it goes, so that it can be resumed.

It writes the run when it starts (status ``running``, with its process id and its inputs: the
playbook's file and digest, the variables given, the configuration), each step when it ends (with
its output, when a template may read it), the items of each `for_each` as they succeed, and the
run's status when it ends. Items are written in batches, a transaction at least every
`FLUSH_EVERY` seconds and whenever a step ends (group commit): one commit per item would cost more
than the item. A kill -9 therefore loses at most the items of the last fraction of a second; a
resumed run runs them again, with the same Idempotency-Key, so an API that honours the key replays
them instead of doing them twice. Item indices are stored as ranges (a million items that finished
in order take a handful of rows) and outputs only of steps a template reads.

What is recorded is masked already (a run gives its reporters results with its secrets masked),
except outputs: a resumed run feeds them to templates as they were. The file is private to the user.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.engine.events import Reporter
from orchestrator.engine.journal import as_ranges
from orchestrator.history.store import HistoryUnavailable, open_for_writing, transaction
from orchestrator.history.timeline import record as record_timeline

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from orchestrator.engine.results import RunResult, StepResult
    from orchestrator.planner import Plan, PlannedStep

_STEP_COLUMNS = (
    "run_id, step_id, section, kind, executor, status, attempts, retries, items, items_failed, duration_s, error, "
    "finished_at, output, generation, started_at"
)
_STEP_VALUES = "(" + ", ".join("?" * len(_STEP_COLUMNS.split(", "))) + ")"
_REPLACE_STEP = f"INSERT OR REPLACE INTO steps ({_STEP_COLUMNS}) VALUES {_STEP_VALUES}"
# A step this attempt did not reach: its row from an earlier attempt is replaced, unless it says the
# step succeeded in the run's current generation (a resume relies on that row).
_UNREACHED_STEP = (
    f"INSERT INTO steps ({_STEP_COLUMNS}) VALUES {_STEP_VALUES} ON CONFLICT (run_id, step_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _STEP_COLUMNS.split(", ")[2:])
    + " WHERE steps.status != 'succeeded' OR steps.generation != excluded.generation"
)


def encode(value: Any) -> str | None:
    """An output as JSON, or None when it is not JSON data (then it is not recorded)."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None


def run_inputs(plan: Plan) -> dict[str, Any] | None:
    """What a resume plans again from; None for a playbook that was not loaded from a file."""
    if plan.path is None or plan.playbook.digest is None:
        return None
    secret = set(plan.secret_vars)
    return {
        "playbook": str(Path(plan.path).resolve()),
        "digest": plan.playbook.digest,
        # Values of secret variables are not recorded: a resume asks for them again.
        "vars": {k: v for k, v in plan.overrides.items() if k not in secret},
        "secret_vars": sorted(k for k in plan.overrides if k in secret),
        "config": plan.config.to_data(given_only=True),
        "only": list(plan.only),
        "skip": list(plan.skip),
    }


class RunJournal(Reporter):
    """Records one run at a time in the SQLite file at `path` (created with its folders).

    Pass it as a reporter (``orchestrator.run(plan, reporter=RunJournal(path))``); the engine also
    tells it of each `for_each` item that succeeds (`journal_items`). A run claimed for a resume by this
    process (`orchestrator.resume`) is continued in its existing record."""

    #: Items that finished are committed at least this often (seconds).
    FLUSH_EVERY = 0.1

    def __init__(self, path: str | os.PathLike[str], keep: int | None = None, ephemeral: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self.keep = keep  # the newest `keep` runs stay when a run starts; None keeps every run
        #: What was started for the run and ends with it (the embedded sandbox): its state is not
        #: there for a resume, which is refused unless forced.
        self.ephemeral = tuple(ephemeral)
        self._db: sqlite3.Connection | None = None
        self._run_id: str | None = None
        self._plan: Plan | None = None
        self._generation = 0
        self._written: set[str] = set()
        self._items: dict[str, list[int]] = {}
        self._outputs: dict[str, list[tuple[int, Any]]] = {}
        self._timer: asyncio.TimerHandle | None = None

    # -- the run -------------------------------------------------------------------------------

    def run_started(self, plan: Plan, run_id: str) -> None:
        try:
            self._db = open_for_writing(self.path)
            with transaction(self._db):
                self._generation = self._start(self._db, plan, run_id)
        except (OSError, ValueError) as exc:
            self._db = None
            raise HistoryUnavailable(f"cannot record the run in {self.path}: {exc}") from None
        except Exception as exc:  # sqlite3.Error: the file is not a history, or is locked for too long
            self._db = None
            raise HistoryUnavailable(f"cannot record the run in {self.path}: {exc}") from None
        self._run_id, self._plan = run_id, plan
        self._written.clear()
        try:
            self._timer = asyncio.get_running_loop().call_later(self.FLUSH_EVERY, self._tick)
        except RuntimeError:  # no event loop: items are written when their step ends
            self._timer = None

    def _start(self, db: sqlite3.Connection, plan: Plan, run_id: str) -> int:
        """Insert the run, or continue the record of one this process claimed for a resume; its generation."""
        row = db.execute("SELECT status, pid, host, generation FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        steps = len(plan.steps) + len(plan.rollback) + len(plan.finally_)
        if row is not None:
            status, pid, host, generation = row
            if not (status == "running" and pid == os.getpid() and host == socket.gethostname()):
                raise ValueError(f"run {run_id} is recorded already; resume it with `orchestrate resume {run_id}`")
            db.execute("UPDATE runs SET steps = ? WHERE run_id = ?", (steps, run_id))
            return int(generation)
        inputs = run_inputs(plan)
        if inputs is not None and self.ephemeral:
            inputs["ephemeral"] = list(self.ephemeral)
        db.execute(
            "INSERT INTO runs (run_id, playbook, path, status, started_at, steps, pid, host, inputs) "
            "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
            (run_id, plan.name, str(plan.path) if plan.path else None, time.time(), steps, os.getpid(),
             socket.gethostname(), json.dumps(inputs) if inputs is not None else None),
        )
        if self.keep is not None:
            _prune(db, self.keep)
        return 0

    def journal_items(self, step: PlannedStep, records_output: bool) -> list[Any] | None:
        """Where the engine puts each item of `step` that succeeds (see `engine.journal`)."""
        if self._db is None:
            return None
        if not records_output:
            return self._items.setdefault(step.id, [])
        return self._outputs.setdefault(step.id, [])

    def step_finished(self, step: PlannedStep, result: StepResult) -> None:
        db = self._db
        if db is None:
            return
        with transaction(db):
            self._flush(db)
            db.execute(_REPLACE_STEP, self._step_row(result, time.time()))
        self._written.add(result.id)

    def run_finished(self, result: RunResult) -> None:
        db = self._stop()
        if db is None:
            return
        now = time.time()
        with closing(db), transaction(db):
            self._flush(db)
            # Steps that ended without running (rollback not needed, steps never reached) complete the record.
            db.executemany(_UNREACHED_STEP, [self._step_row(s, now) for s in result.steps if s.id not in self._written])
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, duration_s = ? WHERE run_id = ?",
                (result.status, now, result.duration_s, result.run_id),
            )
            record_timeline(db, result)  # its spans and advice: `history/timeline.py`

    def cut_short(self) -> None:
        """Record the run as interrupted now, from a process about to exit without finishing it
        (a second Ctrl-C): otherwise it would show as abandoned, as if the controller had died."""
        db = self._stop()
        if db is None:
            return
        with closing(db), transaction(db):
            self._flush(db)
            db.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ? WHERE run_id = ?", (time.time(), self._run_id)
            )

    # -- batching ------------------------------------------------------------------------------

    def _stop(self) -> sqlite3.Connection | None:
        db, self._db = self._db, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return db

    def _tick(self) -> None:
        db = self._db
        if db is None:
            return
        try:
            with transaction(db):
                self._flush(db)
        except Exception as exc:  # as a reporter hook that raised: the run goes on unrecorded from here
            from orchestrator.logs import get_logger

            self._stop()
            get_logger().warning("history.unavailable", path=str(self.path), error=f"{type(exc).__name__}: {exc}")
            return
        self._timer = asyncio.get_running_loop().call_later(self.FLUSH_EVERY, self._tick)

    def _flush(self, db: sqlite3.Connection) -> None:
        """Write the items that succeeded since the last flush (inside the caller's transaction)."""
        run_id, generation = self._run_id, self._generation
        ranges: list[tuple[Any, ...]] = []
        for step_id, indices in self._items.items():
            if indices:
                ranges.extend((run_id, step_id, generation, a, b) for a, b in as_ranges(indices))
                indices.clear()  # the same list the step's item log appends to
        outputs: list[tuple[Any, ...]] = []
        for step_id, pairs in self._outputs.items():
            if not pairs:
                continue
            # One JSON document per step and batch, [[index, output], ...]: one encoding and one row
            # for the lot. Should an output not be JSON data, the others are encoded one by one
            # and that item is left out (it runs again on resume).
            text = encode(pairs)
            if text is not None:
                recorded = [index for index, _ in pairs]
            else:
                kept = [(index, value) for index, value in pairs if encode(value) is not None]
                text, recorded = encode(kept) or "[]", [index for index, _ in kept]
            pairs.clear()
            outputs.append((run_id, step_id, generation, text))
            ranges.extend((run_id, step_id, generation, a, b) for a, b in as_ranges(recorded))
        if outputs:
            db.executemany("INSERT INTO item_outputs VALUES (?, ?, ?, ?)", outputs)
        if ranges:
            db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?)", ranges)

    def _step_row(self, r: StepResult, now: float) -> tuple[Any, ...]:
        output = None
        plan = self._plan
        if r.status == "succeeded" and r.items is None and plan is not None:
            read = plan.outputs_read
            if read is None or r.id in read:
                output = encode(r.output)
        return (self._run_id, r.id, r.section, r.kind, r.executor, r.status, r.attempts, r.retries, r.items,
                r.items_failed, r.duration_s, r.error, r.ended_at or now, output, self._generation, r.started_at)


def _prune(db: sqlite3.Connection, keep: int) -> None:
    """Forget all but the newest `keep` runs (a run still marked running stays: it may be going on)."""
    old = "SELECT run_id FROM runs WHERE status != 'running' AND run_id NOT IN (SELECT run_id FROM runs ORDER BY started_at DESC LIMIT ?)"
    for table in ("items", "item_outputs", "timeline", "advice", "steps", "runs"):
        db.execute(f"DELETE FROM {table} WHERE run_id IN ({old})", (keep,))
