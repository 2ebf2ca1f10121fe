"""`Scheduler`: the executors for Python scripts, without YAML."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import pytest

from orchestrator import Scheduler
from orchestrator.errors import ExecutorUnavailable
from tests.engine import steps_helpers

if TYPE_CHECKING:
    from collections.abc import Iterator


async def test_submit_runs_each_kind_where_it_belongs() -> None:
    """Coroutines run on the loop thread, blocking calls on a pool thread, cpu calls in another process."""
    async with Scheduler() as sched:
        on_loop = await sched.submit(steps_helpers.where_am_i)
        thread_name = await sched.submit(steps_helpers.sleep_blocking, 0.01, kind="blocking")
        pid = await sched.submit(steps_helpers.burn, 10, kind="cpu")
    assert on_loop["main"] is True
    assert thread_name.startswith("orchestrator-blocking") and thread_name != threading.current_thread().name
    assert pid != os.getpid()


async def test_map_yields_in_item_order_with_bounded_concurrency() -> None:
    """`map` yields results in item order and pulls items lazily from any iterable."""
    pulled: list[int] = []

    def items() -> Iterator[int]:
        for i in range(20):
            pulled.append(i)
            yield i

    async with Scheduler() as sched:
        seen = []
        async for value in sched.map(steps_helpers.slow, (x / 1000 for x in items()), concurrency=4):
            seen.append(value)
            assert len(pulled) <= len(seen) + 4
    assert seen == ["done"] * 20


async def test_map_on_processes_uses_several_workers() -> None:
    """cpu work through `map` lands on more than one worker process."""
    async with Scheduler() as sched:
        pids = [pid async for pid in sched.map(steps_helpers.burn, [150] * 4, kind="cpu", concurrency=4)]
    assert len(set(pids)) >= 2


async def test_errors_propagate_and_misuse_is_explained() -> None:
    """A failing call raises its own exception; using the scheduler outside `async with` says how to use it."""
    async with Scheduler() as sched:
        with pytest.raises(ValueError, match="boom"):
            await sched.submit(steps_helpers.always_fails, kind="blocking")
    with pytest.raises(ExecutorUnavailable, match="async with"):
        await Scheduler().submit(steps_helpers.burn)
