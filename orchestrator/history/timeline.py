"""A run's timeline and advice in the history file: written when the run ends, read back for
`orchestrate runs RUN_ID` (its advice) and its `--trace` and `--html` files.

One row per span in `timeline`: ``what`` is ``step``, ``item`` (a traced item: its lane, whether it
succeeded, its CPU time and how long it queued in its lane), ``wait`` (retry backoff, Retry-After,
a limit), ``attempt`` (a retried attempt) or ``stall`` (the event loop held); times are Unix
seconds. A resumed run adds the spans of each attempt under the same run id. The tables are in
`store.py`'s schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

    from orchestrator.engine.results import RunResult

_INSERT = "INSERT INTO timeline (run_id, what, step_id, item, lane, start, end, status, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


@dataclass(frozen=True)
class Span:
    """One row of a run's timeline."""

    what: str
    step: str | None
    item: int | None
    lane: str | None
    start: float
    end: float
    status: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunTimeline:
    """What `orchestrate runs RUN_ID --trace/--html` draws: the run and its spans, in start order."""

    run_id: str
    playbook: str
    status: str
    started: float
    ended: float | None
    pid: int
    spans: tuple[Span, ...]
    advice: tuple[dict[str, str], ...] = ()


def record(db: sqlite3.Connection, result: RunResult) -> None:
    """Write `result`'s timeline and advice (inside the caller's transaction)."""
    run_id = result.run_id
    db.executemany(
        "INSERT INTO advice (run_id, step_id, tagged, suggested, evidence) VALUES (?, ?, ?, ?, ?)",
        [(run_id, a.step, a.tagged, a.suggested, a.evidence) for a in result.advice],
    )
    timeline = result.timeline
    if timeline is None:
        return
    wall = timeline.wall
    rows: list[tuple[Any, ...]] = []
    for step in result.steps:
        if step.started_at is not None and step.ended_at is not None:
            detail: dict[str, Any] = {"kind": step.kind, "executor": step.executor, "section": step.section, "items": step.items,
                      "attempts": step.attempts, "error": step.error, "sampled": timeline.sampled(step.id)}
            rows.append((run_id, "step", step.id, None, None, step.started_at, step.ended_at, step.status, json.dumps(detail)))
        for s in timeline.items.get(step.id, ()):
            detail = {"cpu": s.cpu, "queued": round(s.queued, 6)} if s.cpu is not None else {}
            rows.append((run_id, "item", step.id, s.index, s.lane, wall(s.started), wall(s.ended),
                         "succeeded" if s.ok else "failed", json.dumps(detail) if detail else None))
    for m in timeline.marks:
        what = "attempt" if m.what.startswith("attempt") else "wait"
        rows.append((run_id, what, m.step, m.index, None, wall(m.started), wall(m.ended), m.what,
                     json.dumps({"detail": m.detail}) if m.detail else None))
    rows.extend(
        (run_id, "stall", st.step, None, "loop", wall(st.started), wall(st.started + st.duration), None,
         json.dumps({"where": st.where}) if st.where else None)
        for st in timeline.stalls
    )
    db.executemany(_INSERT, rows)


def advice_of(db: sqlite3.Connection, run_id: str) -> list[dict[str, str]]:
    rows = db.execute("SELECT step_id, tagged, suggested, evidence FROM advice WHERE run_id = ? ORDER BY rowid", (run_id,))
    return [{"step": s, "tagged": t, "suggested": g, "evidence": e} for s, t, g, e in rows]


def load(db: sqlite3.Connection, run_id: str) -> RunTimeline | None:
    """The run's timeline, or None for an unknown run."""
    run = db.execute(
        "SELECT playbook, status, started_at, finished_at, pid FROM runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    if run is None:
        return None
    rows = db.execute(
        "SELECT what, step_id, item, lane, start, end, status, detail FROM timeline WHERE run_id = ? ORDER BY start",
        (run_id,),
    ).fetchall()
    spans = tuple(Span(w, s, i, lane, a, b, st, json.loads(d) if d else {}) for w, s, i, lane, a, b, st, d in rows)
    playbook, status, started, finished, pid = run
    return RunTimeline(run_id, playbook, status, started, finished, pid, spans, tuple(advice_of(db, run_id)))
