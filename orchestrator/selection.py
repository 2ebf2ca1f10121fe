"""Partial runs: `--only STEP` and `--skip STEP` choose which main steps a run runs.

`--only` runs the steps named and every step they depend on (``needs`` and ``steps.<id>``
references, transitively), so each runs with the outputs it reads. `--skip` leaves out the steps
named and every step that depends on them (which would read an output that is not there). Both
may be given: the steps `--only` pulls in, less those `--skip` takes out. The steps left out end
``skipped``, and the run lists them (``left_out``). `rollback` and `finally` are kept as they are:
they read the outputs of the steps that ran, and ``None`` for those that did not.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from orchestrator.errors import Diagnostic, PlaybookError
from orchestrator.model.validation import closest

if TYPE_CHECKING:
    from collections.abc import Iterable

    from orchestrator.planner import Plan


def select(plan: Plan, *, only: Iterable[str] = (), skip: Iterable[str] = ()) -> Plan:
    """`plan` with the main steps `only` and `skip` leave out marked so (see the module's docstring).
    Raises PlaybookError, located at the playbook, for a name that is not a main step."""
    only, skip = tuple(dict.fromkeys(only)), tuple(dict.fromkeys(skip))
    if not only and not skip:
        return plan
    needs = {s.id: s.needs for s in plan.steps}
    problems = [
        Diagnostic(str(plan.path or "<playbook>"), 1, 1, f"{flag} {name}: not a main step of the playbook"
                   f"{closest(name, needs)}; main steps: {', '.join(needs)}")
        for flag, names in (("--only", only), ("--skip", skip)) for name in names if name not in needs
    ]
    if problems:
        raise PlaybookError(problems)
    kept = _closure(only, needs) if only else set(needs)
    dependents: dict[str, list[str]] = {sid: [] for sid in needs}
    for sid, deps in needs.items():
        for dep in deps:
            dependents[dep].append(sid)
    kept -= _closure(skip, dependents)
    left_out = frozenset(sid for sid in needs if sid not in kept)
    return replace(plan, only=only, skip=skip, left_out=left_out)


def _closure(start: Iterable[str], edges: dict[str, tuple[str, ...]] | dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        sid = todo.pop()
        if sid not in seen:
            seen.add(sid)
            todo.extend(edges[sid])
    return seen
