"""Results and plans as the CLI prints them: text for people, JSON for scripts (the contract).

A run's results come masked (the run masks its secrets when it records each step); a plan, shown
before any run, is masked here with the secrets it knows (`Plan.secrets`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.engine.results import RunResult, StepResult
    from orchestrator.planner import Plan, PlannedStep


def plan_summary(plan: Plan, run_id: str) -> dict[str, Any]:
    """A dry run in the shape of ``--format json``: every step `planned`, with kind_source, needs, wave."""
    steps = [_planned(s) for s in plan.all_steps()]
    summary: dict[str, Any] = {
        "run_id": run_id,
        "playbook": plan.playbook.name,
        "status": "planned",
        "duration_s": 0.0,
        "steps": steps,
    }
    if plan.left_out:  # a partial run (--only, --skip): what it would leave out
        for step in steps:
            if step["id"] in plan.left_out:
                step["status"] = "skipped"
        summary["left_out"] = [s.id for s in plan.steps if s.id in plan.left_out]
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


#: The summary's columns, and those whose cells are right-aligned.
COLUMNS = ("step", "kind", "executor", "status", "attempts", "items", "duration", "error")
_RIGHT = frozenset({"attempts", "items", "duration"})
#: Shortened in this order, each down to its header's width, when the table is wider than it may be.
_SHRINKING = ("error", "step", "executor", "kind")
#: Terminal colours (SGR codes) of the statuses; the header is bold, the title italic.
_STATUS_SGR = {"succeeded": "32", "failed": "31", "cancelled": "33", "skipped": "2"}
# A heavy head over light rows (rich's HEAVY_HEAD box): top, header, rule, row, bottom.
_TOP, _HEAD, _RULE, _ROW, _BOTTOM = "┏━┳┓", "┃ ┃┃", "┡━╇┩", "│ ││", "└─┴┘"


def result_text(result: RunResult, *, width: int | None = None, colour: bool = False) -> str:
    """The run for people: a title line and a table with a row per step (step, kind, executor,
    status, attempts and retries, items of a `for_each`, duration, error).

    Built with string operations only, in time linear in the steps (a 5,000-step run prints in
    milliseconds). Lines are at most `width` wide if given: the error, then the step, are shortened
    with `…`. `colour` adds terminal colours to the statuses, the header and the title."""
    rows = [_row(s) for s in result.steps]
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(COLUMNS)]
    if width is not None:
        _fit(widths, width)
    inner = sum(widths) + 3 * len(widths) - 1  # between the outer borders: a space either side of each cell

    def rule(box: str) -> str:
        return box[0] + box[2].join(box[1] * (w + 2) for w in widths) + box[3]

    def line(box: str, cells: list[str], sgr: list[str | None]) -> str:
        parts = []
        for name, cell, w, code in zip(COLUMNS, cells, widths, sgr, strict=True):
            text = cell if len(cell) <= w else cell[: w - 1] + "…"
            text = text.rjust(w) if name in _RIGHT else text.ljust(w)
            parts.append(f"\x1b[{code}m{text}\x1b[0m" if colour and code else text)
        return box[0] + " " + f" {box[2]} ".join(parts) + " " + box[3]

    title = f"{result.playbook}: {result.status} in {result.duration_s:.2f}s  (run {result.run_id})"
    title = " " * max(0, (inner + 2 - len(title)) // 2) + (f"\x1b[3m{title}\x1b[0m" if colour else title)
    status = COLUMNS.index("status")
    plain: list[str | None] = [None] * len(COLUMNS)
    out = [title, rule(_TOP), line(_HEAD, list(COLUMNS), ["1"] * len(COLUMNS)), rule(_RULE)]
    for row in rows:
        sgr = plain if not colour else [_STATUS_SGR.get(row[status]) if i == status else None for i in range(len(COLUMNS))]
        out.append(line(_ROW, row, sgr))
    out.append(rule(_BOTTOM))
    return "\n".join(out)


def _row(s: StepResult) -> list[str]:
    name = s.id if s.section == "steps" else f"{s.id} ({s.section})"
    items = "" if s.items is None else f"{s.items - s.items_failed}/{s.items}"
    if s.concurrency is not None:  # `concurrency: auto`: what it settled on
        items += f" (auto: {s.concurrency})"
    attempts = str(s.attempts) + (f" (+{s.retries} retries)" if s.retries else "")
    error = " ".join((s.error or "").split())[:120]  # one line: a multi-line error would break the table
    return [name, s.kind, s.executor, s.status, attempts, items, f"{s.duration_s:.2f}s", error]


def _fit(widths: list[int], width: int) -> None:
    """Narrow the shrinking columns (in order, each down to its header) until the table fits."""
    excess = sum(widths) + 3 * len(widths) + 1 - width
    for name in _SHRINKING:
        if excess <= 0:
            return
        i = COLUMNS.index(name)
        cut = min(excess, widths[i] - len(name))
        if cut > 0:
            widths[i] -= cut
            excess -= cut
