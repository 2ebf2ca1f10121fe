"""Resuming a recorded run: the checks that refuse it, its plan made again from the recorded
inputs, and the point it starts from.

A run can be resumed when it did not succeed (failed, interrupted, or abandoned: its controller
died) and is not running elsewhere. It is planned again from what was recorded when it started:
the same playbook file, the variables given then (secret ones are not recorded: they must be given
again), the same configuration. A playbook that changed since, or variables or a configuration
given now that differ, refuse the resume (naming what changed) unless it is forced. The run is then
claimed (marked running by this process) in one transaction, so two resumes of one run cannot both
go on. What it starts from (`ResumePoint`): the main steps that succeeded and, for each `for_each`
step, the items that succeeded, each with its recorded output where a template reads it. A run
whose `rollback` ran had its work undone: it starts from the top, in a new generation (so its
Idempotency-Keys are new ones).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.engine.journal import IndexRanges, RecordedItems, RecordedStep, ResumePoint
from orchestrator.errors import OrchestratorError
from orchestrator.history.records import alive, find_record
from orchestrator.history.store import connect

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Mapping

    from orchestrator.config import Config
    from orchestrator.planner import Plan


class ResumeRefused(OrchestratorError):
    """The run cannot be resumed; the message says why and what to do."""

    exit_code = 2


@dataclass(frozen=True)
class Resumption:
    """A run claimed for resuming by this process: its plan, where it starts, and its record."""

    run_id: str
    plan: Plan
    point: ResumePoint
    #: The history file the run is recorded in (and goes on being recorded in).
    history: Path
    #: The variables given to the run, when it started and now (as the CLI's --var).
    given: tuple[str, ...]


def prepare_resume(
    history: str | os.PathLike[str],
    run_id: str,
    *,
    vars: Mapping[str, Any] | None = None,
    config: Config | None = None,
    force: bool = False,
) -> Resumption:
    """Check that `run_id` (or a unique prefix of it) can be resumed, plan it again, claim it.
    Raises ResumeRefused saying why not, or PlaybookError if the playbook no longer plans."""
    from orchestrator.api import plan as make_plan
    from orchestrator.config import Config
    from orchestrator.loader import load

    path = Path(history)
    given = dict(vars or {})
    if not path.exists():
        raise ResumeRefused(f"no run {run_id!r}: the run history {path} does not exist")
    with connect(path) as db:
        record = find_record(db, run_id)
        if record is None:
            raise ResumeRefused(f"no single run matches {run_id!r} in {path}; `orchestrate runs` lists them")
        row = db.execute("SELECT inputs, generation FROM runs WHERE run_id = ?", (record.run_id,)).fetchone()
    run_id = record.run_id
    if record.status == "succeeded":
        raise ResumeRefused(f"run {run_id} succeeded: there is nothing to resume; run the playbook again for a new run")
    if record.status == "running":
        raise ResumeRefused(f"run {run_id} is still running (its controller is alive); stop it first, or wait for it to end")
    if record.status == "planned" or row is None or row[0] is None:
        raise ResumeRefused(
            f"run {run_id} cannot be resumed: its inputs were not recorded (its playbook was not loaded from a file but "
            "read from standard input or built in Python, or an older version recorded it); run the playbook again as a "
            "new run, from a file if its runs are to be resumable"
        )
    inputs: dict[str, Any] = json.loads(row[0])
    playbook_file = Path(inputs["playbook"])
    if not playbook_file.is_file():
        raise ResumeRefused(f"run {run_id} ran {playbook_file}, which is gone; put it back to resume the run")
    missing = [name for name in inputs["secret_vars"] if name not in given]
    if missing:
        names = ", ".join(missing)
        raise ResumeRefused(
            f"run {run_id} was given secret variable(s) {names}, whose values are not recorded: "
            f"give them again ({' '.join(f'--var {n}=...' for n in missing)})"
        )
    playbook = load(playbook_file)
    recorded_config = Config.parse(inputs["config"])
    changes = _changes(inputs, playbook.digest, set(playbook.secrets), given, config, recorded_config)
    if inputs.get("ephemeral"):
        started = " and ".join(inputs["ephemeral"])
        changes.append(
            f"it ran against the embedded {started} started for it, which ended with it, and what the run made "
            "there with it (to resume runs, run against a target that outlives them: `orchestrate sandbox` and "
            "--var api=URL)"
        )
    if changes and not force:
        raise ResumeRefused(
            f"run {run_id} cannot be resumed as it was: " + "; ".join(changes)
            + ". Run the playbook again as a new run, or resume anyway with --force (resume(..., force=True))"
        )
    overrides = {**inputs["vars"], **given}
    the_plan = make_plan(
        playbook, vars=overrides, config=config or recorded_config, only=inputs.get("only", ()), skip=inputs.get("skip", ())
    )
    generation = _claim(path, run_id)
    with connect(path) as db:
        point = _point(db, run_id, the_plan, generation)
    return Resumption(run_id, the_plan, point, path, tuple(sorted({*inputs["vars"], *inputs["secret_vars"], *given})))


def _changes(
    inputs: Mapping[str, Any], digest: str | None, secret: set[str], given: Mapping[str, Any],
    config: Config | None, recorded_config: Config,
) -> list[str]:
    """What differs from the run as it was recorded, one phrase each."""
    out: list[str] = []
    if digest != inputs["digest"]:
        out.append(f"the playbook {inputs['playbook']} changed since the run started")
    recorded_vars: Mapping[str, Any] = inputs["vars"]
    differ = sorted(
        k for k, v in given.items() if k not in secret and (k not in recorded_vars or recorded_vars[k] != v)
    )
    if differ:
        out.append(f"--var {', '.join(differ)} differ(s) from the run's")
    if config is not None:
        keys = _differing(config.to_data(), recorded_config.to_data())
        if keys:
            out.append(f"the configuration differs ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})")
    return out


def _differing(a: Any, b: Any, at: str = "") -> list[str]:
    """Dotted keys where two configuration dumps differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [key for k in sorted(a.keys() | b.keys()) for key in _differing(a.get(k), b.get(k), f"{at}.{k}" if at else k)]
    return [] if a == b else [at or "(all)"]


def _claim(path: Path, run_id: str) -> int:
    """Mark the run as running by this process, unless another process did first; its generation
    from now on (one more than before when `rollback` ran: its work was undone)."""
    with connect(path) as db:
        db.execute("BEGIN IMMEDIATE")  # one resume at a time sees and claims the run
        try:
            status, pid, host, generation = db.execute(
                "SELECT status, pid, host, generation FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if status == "succeeded" or (status == "running" and alive(pid, host)):
                raise ResumeRefused(f"run {run_id} was resumed by another process meanwhile (pid {pid} on {host})")
            rolled_back = db.execute(
                "SELECT COUNT(*) FROM steps WHERE run_id = ? AND section = 'rollback' AND generation = ? "
                "AND status IN ('succeeded', 'failed', 'cancelled')",
                (run_id, generation),
            ).fetchone()[0]
            generation += 1 if rolled_back else 0
            db.execute(
                "UPDATE runs SET status = 'running', pid = ?, host = ?, generation = ?, starts = starts + 1, "
                "finished_at = NULL WHERE run_id = ?",
                (os.getpid(), socket.gethostname(), generation, run_id),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return int(generation)


def _point(db: sqlite3.Connection, run_id: str, plan: Plan, generation: int) -> ResumePoint:
    """What the record of `generation` says was done: succeeded main steps, succeeded items."""
    read = plan.outputs_read
    main = {s.id: s for s in plan.steps}
    items: dict[str, RecordedItems] = {}
    for step_id in main:
        ranges = db.execute(
            "SELECT start, stop FROM items WHERE run_id = ? AND step_id = ? AND generation = ?", (run_id, step_id, generation)
        ).fetchall()
        if ranges:
            outputs: dict[int, Any] = {}
            if read is None or step_id in read:
                for (text,) in db.execute(
                    "SELECT outputs FROM item_outputs WHERE run_id = ? AND step_id = ? AND generation = ?",
                    (run_id, step_id, generation),
                ):
                    outputs.update((index, value) for index, value in json.loads(text))
            items[step_id] = RecordedItems(IndexRanges(ranges), outputs)
    steps: dict[str, RecordedStep] = {}
    for step_id, attempts, retries, duration, count, output in db.execute(
        "SELECT step_id, attempts, retries, duration_s, items, output FROM steps "
        "WHERE run_id = ? AND section = 'steps' AND status = 'succeeded' AND generation = ?",
        (run_id, generation),
    ):
        step = main.get(step_id)
        if step is None:
            continue
        reads = read is None or step_id in read
        value: Any = None
        if step.for_each is not None and reads:
            recorded = items.get(step_id)
            if count and (recorded is None or any(i not in recorded.outputs for i in range(count))):
                continue  # an output not recorded whole: the items not recorded run again
            value = [recorded.outputs[i] for i in range(count)] if recorded is not None and count else []
        elif reads:
            if output is None:
                continue  # its output was not JSON data, so not recorded: the step runs again
            value = json.loads(output)
        steps[step_id] = RecordedStep(attempts, retries, duration, count, value)
    return ResumePoint(generation, steps, items)
