"""A step's timeout bounds each attempt, with one timer for all of a step's running attempts."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest

import orchestrator
from orchestrator.engine.deadline import Deadlines
from orchestrator.errors import StepTimeout

if TYPE_CHECKING:
    from collections.abc import Callable

H = "tests.engine.steps_helpers"


async def bounded(deadlines: Deadlines, seconds: float) -> float:
    """Sleep `seconds` inside one attempt; the time it ended (timed out or not) on the loop's clock."""
    try:
        with deadlines.attempt():
            await asyncio.sleep(seconds)
    finally:
        ended = asyncio.get_running_loop().time()
    return ended


async def test_an_attempt_that_runs_over_ends_at_its_deadline_as_a_step_timeout() -> None:
    deadlines = Deadlines(0.1)
    started = time.monotonic()
    with pytest.raises(StepTimeout, match=r"timed out after 0\.1s"):
        await bounded(deadlines, 5)
    assert 0.09 <= time.monotonic() - started < 1


async def test_each_attempt_gets_its_own_deadline_from_when_it_started() -> None:
    """Attempts started 0.1 s apart, each with 0.2 s: the quick ones do not move the others' deadlines,
    and each slow one ends 0.2 s after its own start."""
    deadlines = Deadlines(0.2)
    loop = asyncio.get_running_loop()

    async def staggered(delay: float, seconds: float) -> float:
        await asyncio.sleep(delay)
        start = loop.time()
        try:
            return await bounded(deadlines, seconds) - start
        except StepTimeout:
            return -(loop.time() - start)  # negative: timed out, after this long

    quick, slow, quick_again, slow_again = await asyncio.gather(
        staggered(0.0, 0.01), staggered(0.1, 5), staggered(0.15, 0.01), staggered(0.2, 5)
    )
    assert 0 < quick < 0.1 and 0 < quick_again < 0.1
    assert -0.35 < slow <= -0.19 and -0.35 < slow_again <= -0.19


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    """Cancelled by someone else (fail-fast, Ctrl-C) before the deadline: CancelledError, not a timeout."""
    deadlines = Deadlines(10)
    task = asyncio.ensure_future(bounded(deadlines, 5))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_outside_cancellation_at_the_deadline_is_not_swallowed() -> None:
    """Both at once: the deadline expires and, before the task runs again, it is also cancelled from
    outside. The outside request wins; reporting a timeout would swallow it."""
    deadlines = Deadlines(0.05)
    loop = asyncio.get_running_loop()

    async def attempt() -> None:
        task = asyncio.current_task()
        assert task is not None
        with deadlines.attempt() as running:
            loop.call_at(running.until, task.cancel)  # the same loop turn as the deadline's timer
            await asyncio.sleep(5)

    with pytest.raises(asyncio.CancelledError):
        await asyncio.ensure_future(attempt())


async def test_a_fan_out_with_a_timeout_times_out_only_the_slow_items(plan_of: Callable[..., orchestrator.Plan]) -> None:
    plan = plan_of(f"""
        name: some slow
        steps:
          - id: items
            for_each: [0.01, 5, 0.01, 5, 0.01]
            concurrency: 5
            timeout: 200ms
            on_error: continue
            call: '{H}:slow'
            with: {{seconds: "{{{{ item }}}}"}}
        """)
    started = time.monotonic()
    result = await orchestrator.arun(plan)
    step = result.step("items")
    assert step.status == "failed" and step.items == 5 and step.items_failed == 2
    assert "attempt timed out after 0.2s" in str(step.error)
    assert time.monotonic() - started < 2
