"""Plan: kinds, executors, dependencies and waves are decided before anything runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import orchestrator
from orchestrator.config import Config

if TYPE_CHECKING:
    from collections.abc import Callable

H = "tests.engine.steps_helpers"


def test_kinds_are_inferred_from_actions_and_stated(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """Each step's kind is declared or inferred, and says which; the executor follows configuration."""
    plan = plan_of(f"""
        name: kinds
        steps:
          - {{id: co, call: '{H}:slow', with: {{seconds: 0}}}}
          - {{id: sync, call: '{H}:burn'}}
          - {{id: heavy, kind: cpu, call: '{H}:burn'}}
          - {{id: prog, shell: {{argv: ['true']}}}}
        """)
    got = {s.id: (s.kind, s.kind_source, s.executor) for s in plan.steps}
    assert got == {
        "co": ("non-blocking", "inferred", "asyncio"),
        "sync": ("blocking", "inferred", "threads"),
        "heavy": ("cpu", "declared", "processes"),
        "prog": ("non-blocking", "inferred", "asyncio"),
    }


def test_configuration_says_where_a_kind_runs(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """The same playbook planned with cpu on threads reports the threads executor."""
    config = Config.parse({"executors": {
        "non-blocking": {"type": "asyncio"}, "blocking": {"type": "threads"}, "cpu": {"type": "threads", "workers": 4}}})
    plan = plan_of(f"name: c\nsteps:\n  - {{id: heavy, kind: cpu, call: '{H}:burn'}}\n", config=config)
    assert plan.step("heavy").executor == "threads"


def test_references_become_dependencies_and_waves(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """`steps.<id>` in any template and `needs` make edges; waves are depths in the graph."""
    plan = plan_of("""
        name: graph
        steps:
          - {id: a, set: 1}
          - {id: b, set: "{{ steps.a.output }}"}
          - {id: c, set: "{{ steps['a'].output }}", needs: [b]}
          - {id: d, set: 2}
        """)
    assert {s.id: s.needs for s in plan.steps} == {"a": (), "b": ("a",), "c": ("a", "b"), "d": ()}
    assert plan.waves == [["a", "d"], ["b"], ["c"]]


def test_var_overrides_replace_playbook_defaults(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """Variables given to plan() override the playbook's `vars`."""
    plan = plan_of("name: v\nvars: {replicas: 3}\nsteps:\n  - {id: a, set: '{{ replicas }}'}\n", vars={"replicas": 5})
    assert plan.vars["replicas"] == 5


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("  - {id: a, kind: cpu, call: 'tests.engine.steps_helpers:unpicklable'}", "cannot be sent to a worker process"),
        ("  - {id: a, kind: cpu, call: 'tests.engine.steps_helpers:slow'}", "cannot run as 'cpu'"),
        ("  - {id: a, kind: blocking, shell: {argv: [ls]}}", "cannot run as 'blocking'"),
        ("  - {id: a, set: '{{ steps.a.output }}'}", "cannot depend on itself"),
        ("  - {id: a, set: '{{ nope }}'}", "unknown name 'nope'"),
    ],
)
def test_static_problems_are_plan_errors(plan_of: Callable[..., orchestrator.Plan], body: str, fragment: str) -> None:
    """Problems knowable before the run raise PlaybookError with a located message."""
    with pytest.raises(orchestrator.PlaybookError) as caught:
        plan_of(f"name: bad\nsteps:\n{body}\n")
    messages = [str(d) for d in caught.value.diagnostics]
    assert any(fragment in m for m in messages), messages
    assert all(m.split(":")[1].isdigit() for m in messages)
