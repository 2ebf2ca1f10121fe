"""Results and plans as the CLI prints them: text for people, JSON for scripts (the contract).

A run's results come masked (the run masks its secrets when it records each step); a plan, shown
before any run, is masked here with the secrets it knows (`Plan.secrets`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.engine.results import RunResult
    from orchestrator.planner import Plan, PlannedStep


def plan_summary(plan: Plan, run_id: str) -> dict[str, Any]:
    """A dry run in the shape of ``--format json``: every step `planned`, with kind_source, needs, wave."""
    summary = {
        "run_id": run_id,
        "playbook": plan.playbook.name,
        "status": "planned",
        "duration_s": 0.0,
        "steps": [_planned(s) for s in plan.all_steps()],
    }
    secrets = plan.secrets()
    return secrets.mask_value(summary) if secrets else summary


def _planned(s: PlannedStep) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": s.id, "kind": s.kind, "executor": s.executor, "status": "planned", "attempts": 0, "duration_s": 0.0,
        "error": None, "kind_source": s.kind_source, "needs": list(s.needs), "wave": s.wave, "section": s.section,
        "action": s.action.name,
    }
    if s.when is not None:
        out["when"] = s.step.when
    if s.for_each is not None:
        out["for_each"] = len(s.for_each.value) if s.for_each.is_static and isinstance(s.for_each.value, list) else None
        out["concurrency"] = s.concurrency
    if s.limits:
        out["limits"] = list(s.limits)
    out["retry"] = {"attempts": s.retry.attempts, "backoff": s.retry.spec.backoff}
    out["timeout_s"] = s.timeout
    return out


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, default=str)


def plan_text(plan: Plan) -> str:
    """The plan for people: waves, each step's kind (declared or inferred) and where it would run."""
    lines = [f"plan: {plan.playbook.name}" + (f"  ({plan.playbook.path})" if plan.playbook.path else "")]
    for wave, ids in enumerate(plan.waves):
        lines.append(f"wave {wave}:")
        lines.extend(_step_line(plan.step(i)) for i in ids)
    for title, steps in (("rollback (if the run fails):", plan.rollback), ("finally (always):", plan.finally_)):
        if steps:
            lines.append(title)
            lines.extend(_step_line(s) for s in steps)
    return plan.secrets().mask("\n".join(lines))


def _step_line(s: PlannedStep) -> str:
    where = f"{s.kind} ({s.kind_source}) on {s.executor}"
    parts = [f"  {s.id:<20} {s.action.name:<10} {where}"]
    if s.needs:
        parts.append(f"after {', '.join(s.needs)}")
    if s.for_each is not None:
        size = len(s.for_each.value) if s.for_each.is_static and isinstance(s.for_each.value, list) else "?"
        parts.append(f"for_each {size} items x{s.concurrency}")
    if s.when is not None:
        parts.append(f"when {s.step.when}")
    if s.limits:
        parts.append(f"limit {', '.join(s.limits)}")
    if s.retry.attempts > 1:
        parts.append(f"retry {s.retry.attempts}")
    return "  ".join(parts)


def result_table(result: RunResult) -> Any:
    """A rich Table: step, kind, executor, status, attempts, duration."""
    from rich.table import Table

    colours = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "skipped": "dim"}
    table = Table(title=f"{result.playbook}: {result.status} in {result.duration_s:.2f}s  (run {result.run_id})")
    for column in ("step", "kind", "executor", "status", "attempts", "items", "duration", "error"):
        table.add_column(column, justify="right" if column in ("attempts", "items", "duration") else "left")
    for s in result.steps:
        name = s.id if s.section == "steps" else f"{s.id} ({s.section})"
        items = "" if s.items is None else (f"{s.items - s.items_failed}/{s.items}")
        table.add_row(
            name, s.kind, s.executor, f"[{colours.get(s.status, 'white')}]{s.status}[/]",
            str(s.attempts) + (f" (+{s.retries} retries)" if s.retries else ""), items, f"{s.duration_s:.2f}s",
            (s.error or "")[:120],
        )
    return table
