"""`workers: auto` on the thread pool: it grows with the blocking calls in flight, and stops
growing where more threads only add contention."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

import orchestrator
from orchestrator.config import Config, ExecutorSpec
from orchestrator.executors.base import Invocation
from orchestrator.executors.pool_size import PoolSize
from orchestrator.executors.threads import AUTO_LEAST, AUTO_MOST, ThreadExecutor
from tests.engine import pool_helpers

if TYPE_CHECKING:
    from collections.abc import Callable

H = "tests.engine.pool_helpers"


def auto_threads() -> Config:
    config = Config()
    return config.replace(executors={**config.executors, "blocking": ExecutorSpec(type="threads", workers="auto")})


async def test_a_blocking_fan_out_of_200_grows_the_pool_to_its_concurrency(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """200 calls of 50 ms at concurrency 200 on `workers: auto`: the pool starts at 4 threads and
    grows until the calls run side by side: at least ten times as many as it started with (how
    close it comes to all 200 at once depends on how fast the machine starts threads; the time
    against every fixed size is measured by bench/pool_auto.py)."""
    pool_helpers.reset()
    plan = plan_of(
        f"name: pool\nsteps:\n  - id: sdk\n    kind: blocking\n    for_each: '{{{{ range(200) }}}}'\n"
        f"    concurrency: 200\n    call: '{H}:wait'\n    with: {{seconds: 0.05}}\n",
        config=auto_threads(),
    )
    result = await orchestrator.arun(plan)
    assert result.status == "succeeded", [s.error for s in result.steps if s.error]
    assert result.step("sdk").executor == "threads"
    assert pool_helpers.peak >= 10 * AUTO_LEAST
    assert pool_helpers.peak <= len(set(result.step("sdk").output)) <= AUTO_MOST


async def test_the_pool_grows_only_as_far_as_calls_wait_for_a_thread() -> None:
    """Three calls at a time never start a fourth thread, though the pool could hold 256."""
    executor = ThreadExecutor("auto")
    pool_helpers.reset()
    try:
        for _ in range(3):
            await asyncio.gather(*(executor.run(Invocation(pool_helpers.wait, (0.01,)), {}) for _ in range(3)))
    finally:
        await executor.aclose()
    assert executor.sizer is not None and executor.sizer.peak == 3 and pool_helpers.peak == 3
    assert executor.size == AUTO_LEAST


def test_contention_caps_the_pool_at_what_its_throughput_needs() -> None:
    """Calls whose time grows with the pool (CPU work holding the GIL): 10 ms alone, 10 ms per
    thread in flight at 64 threads, so 100 calls a second whatever the size. Little's law says
    100/s x 10 ms = 1 thread does that work: the ceiling drops to twice that (at least 4)."""
    size = PoolSize(4, 256, clock=lambda: 0.0)
    size.capacity.total = 64
    now = 0.0
    for _ in range(64):  # a first window, uncontended: the floor is 10 ms
        now += 0.01 / 64
        size.finished(0.01, now)
    assert size.ceiling == 256 and size.floor == pytest.approx(0.01)
    for _ in range(64):  # contended: 0.64 s per call, 100 calls a second
        now += 0.01
        size.finished(0.64, now)
    assert size.ceiling == 4 and size.capacity.total == 4
