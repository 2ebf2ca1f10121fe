"""The scheduler runs each kind of work where it belongs, concurrently."""

from __future__ import annotations

import time

import orchestrator

H = "tests.engine.steps_helpers"


async def test_twenty_blocking_steps_overlap_on_threads(plan_of):
    """20 independent blocking steps that each sleep 0.2 s finish in well under the 4 s they'd take in turn."""
    steps = "\n".join(
        f"  - {{id: s{i}, kind: blocking, call: '{H}:sleep_blocking', with: {{seconds: 0.2}}}}" for i in range(20)
    )
    plan = plan_of(f"name: threads\nsteps:\n{steps}\n")
    started = time.perf_counter()
    result = await orchestrator.arun(plan)
    elapsed = time.perf_counter() - started
    assert result.status == "succeeded"
    assert {s.executor for s in result.steps} == {"threads"}
    assert elapsed < 1.0, f"20 x 0.2 s blocking steps took {elapsed:.2f}s: they did not overlap"
    assert all(s.output.startswith("orchestrator-blocking") for s in result.steps)


async def test_cpu_steps_run_in_several_worker_processes(plan_of):
    """Four CPU-bound cpu steps report at least two distinct worker pids, none of them ours."""
    import os

    steps = "\n".join(f"  - {{id: c{i}, kind: cpu, call: '{H}:burn', with: {{ms: 300}}}}" for i in range(4))
    result = await orchestrator.arun(plan_of(f"name: cpu\nsteps:\n{steps}\n"))
    assert result.status == "succeeded"
    pids = {s.output for s in result.steps}
    assert len(pids) >= 2 and os.getpid() not in pids
    assert {s.executor for s in result.steps} == {"processes"}


async def test_coroutine_steps_never_run_on_a_thread(plan_of):
    """A coroutine function is inferred non-blocking and awaited on the event loop's own thread."""
    result = await orchestrator.arun(plan_of(f"name: loop\nsteps:\n  - id: a\n    call: '{H}:where_am_i'\n"))
    step = result.step("a")
    assert (step.kind, step.executor) == ("non-blocking", "asyncio")
    assert step.output["main"] is True


async def test_a_step_starts_when_its_own_dependencies_finish_not_its_wave(plan_of):
    """`late` depends only on the fast step, so it does not wait for the slow one in the same wave."""
    plan = plan_of(f"""
        name: eager
        steps:
          - {{id: fast, call: '{H}:slow', with: {{seconds: 0.01}}}}
          - {{id: slow, call: '{H}:slow', with: {{seconds: 0.6}}}}
          - {{id: late, needs: [fast], call: '{H}:slow', with: {{seconds: 0.01}}}}
          - {{id: last, needs: [slow, late], set: ok}}
        """)
    assert plan.waves == [["fast", "slow"], ["late"], ["last"]]
    started = time.perf_counter()
    result = await orchestrator.arun(plan)
    assert result.status == "succeeded"
    # late finished long before slow: it started as soon as `fast` was done
    assert result.step("late").duration_s < 0.3
    assert time.perf_counter() - started < 1.5
