"""The scheduler runs each kind of work where it belongs, concurrently."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orchestrator

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

H = "tests.engine.steps_helpers"


async def test_twenty_blocking_steps_overlap_on_threads(plan_of: Callable[..., orchestrator.Plan], tmp_path: Path) -> None:
    """20 independent blocking steps are all running at once, each on a pool thread: each waits at
    a barrier that opens only when all 20 are inside it (run in turn, the first would fail)."""
    key = str(tmp_path)
    steps = "\n".join(
        f"  - {{id: s{i}, kind: blocking, call: '{H}:meet', with: {{key: '{key}', parties: 20}}}}" for i in range(20)
    )
    result = await orchestrator.arun(plan_of(f"name: threads\nsteps:\n{steps}\n"))
    assert result.status == "succeeded", [s.error for s in result.steps if s.error]
    assert {s.executor for s in result.steps} == {"threads"}
    assert all(s.output.startswith("orchestrator-blocking") for s in result.steps)


async def test_cpu_steps_run_in_several_worker_processes(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """Four CPU-bound cpu steps report at least two distinct worker pids, none of them ours."""
    import os

    steps = "\n".join(f"  - {{id: c{i}, kind: cpu, call: '{H}:burn', with: {{ms: 300}}}}" for i in range(4))
    result = await orchestrator.arun(plan_of(f"name: cpu\nsteps:\n{steps}\n"))
    assert result.status == "succeeded"
    pids = {s.output for s in result.steps}
    assert len(pids) >= 2 and os.getpid() not in pids
    assert {s.executor for s in result.steps} == {"processes"}


async def test_coroutine_steps_never_run_on_a_thread(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """A coroutine function is inferred non-blocking and awaited on the event loop's own thread."""
    result = await orchestrator.arun(plan_of(f"name: loop\nsteps:\n  - id: a\n    call: '{H}:where_am_i'\n"))
    step = result.step("a")
    assert (step.kind, step.executor) == ("non-blocking", "asyncio")
    assert step.output["main"] is True


async def test_a_step_starts_when_its_own_dependencies_finish_not_its_wave(plan_of: Callable[..., orchestrator.Plan], tmp_path: Path) -> None:
    """`late` depends only on `fast`, so it runs while `slow` (of the first wave) is still running:
    `slow` finishes only once `late` has signalled it, which a wave-by-wave run would never do."""
    key = str(tmp_path)
    plan = plan_of(f"""
        name: eager
        steps:
          - {{id: fast, call: '{H}:slow', with: {{seconds: 0.01}}}}
          - {{id: slow, call: '{H}:await_signal', with: {{key: '{key}'}}}}
          - {{id: late, needs: [fast], call: '{H}:send_signal', with: {{key: '{key}'}}}}
          - {{id: last, needs: [slow, late], set: ok}}
        """)
    assert plan.waves == [["fast", "slow"], ["late"], ["last"]]
    result = await orchestrator.arun(plan)
    assert result.status == "succeeded", [s.error for s in result.steps if s.error]
