"""`Scheduler`: the executors for Python scripts, without YAML."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest

from orchestrator import Scheduler, SyncScheduler
from orchestrator.errors import ExecutorUnavailable, StepTimeout
from orchestrator.model.playbook import LimitSpec
from tests.engine import steps_helpers

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path


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


# --- retry, timeout, limits ---------------------------------------------------------------------


def flaky(failures: int) -> tuple[Callable[[int], Awaitable[int]], list[int]]:
    """A coroutine function that fails its first `failures` calls, and the list of its calls."""
    calls: list[int] = []

    async def call(value: int) -> int:
        calls.append(value)
        if len(calls) <= failures:
            raise ConnectionError(f"call {len(calls)} failed")
        return value * 2

    return call, calls


async def test_retry_uses_the_engines_policy_and_each_call_may_say_otherwise() -> None:
    """`retry=` as in a playbook (`3` or a mapping) retries errors; a call's own `retry=None` does not."""
    twice, calls = flaky(failures=2)
    async with Scheduler(retry={"attempts": 3, "delay": 0}) as sched:
        assert await sched.submit(twice, 21) == 42
        assert len(calls) == 3
        once, once_calls = flaky(failures=1)
        with pytest.raises(ConnectionError, match="call 1 failed"):
            await sched.submit(once, 1, retry=None)
        assert len(once_calls) == 1


async def test_timeout_bounds_each_attempt_and_is_retried() -> None:
    """An attempt past `timeout` raises StepTimeout; with retry, each attempt gets the full timeout."""
    calls: list[float] = []

    async def hangs(seconds: float) -> str:
        calls.append(seconds)
        await asyncio.sleep(seconds)
        return "done"

    async with Scheduler(timeout="50ms") as sched:
        with pytest.raises(StepTimeout, match=r"after 0\.05s"):
            await sched.submit(hangs, 10.0)
        with pytest.raises(StepTimeout):
            await sched.submit(hangs, 10.0, retry={"attempts": 2, "delay": 0})
        assert await sched.submit(hangs, 0.0, timeout=None) == "done"
    assert len(calls) == 4


async def test_limits_cap_calls_in_flight_across_submit_and_map() -> None:
    """A named limit's concurrency holds whatever `map` allows; an unknown limit is refused, naming the known ones."""
    active = peak = 0

    async def tracked(item: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.005)
        active -= 1
        return item

    async with Scheduler(limits={"api": {"concurrency": 2}, "other": LimitSpec(rate="1000/s")}) as sched:
        got = [x async for x in sched.map(tracked, range(12), concurrency=8, limit="api")]
        assert got == list(range(12)) and peak == 2
        with pytest.raises(ValueError, match="unknown limit 'apj'; limits: api, other"):
            await sched.submit(tracked, 1, limit="apj")


async def test_a_rate_limit_spaces_starts() -> None:
    """`rate: 50/s` lets 5 calls start no faster than one per 20 ms."""
    async with Scheduler(limits={"slow": {"rate": "50/s"}}, limit="slow") as sched:
        started = time.monotonic()
        assert [x async for x in sched.map(steps_helpers.slow, [0.0] * 5, concurrency=5)] == ["done"] * 5
    assert time.monotonic() - started >= 0.075


# --- map with errors in place ---------------------------------------------------------------------


async def test_map_can_return_errors_in_place_and_go_on() -> None:
    """With `return_exceptions=True` a failed item yields its exception in its place; every item runs."""
    seen: list[int] = []

    async def half(item: int) -> float:
        seen.append(item)
        if item == 2:
            raise ValueError("two is odd here")
        return item / 2

    async with Scheduler() as sched:
        got = [x async for x in sched.map(half, range(5), concurrency=2, return_exceptions=True)]
        assert got[:2] == [0.0, 0.5] and got[3:] == [1.5, 2.0]
        assert isinstance(got[2], ValueError) and str(got[2]) == "two is odd here"
        assert sorted(seen) == [0, 1, 2, 3, 4]
        with pytest.raises(ValueError, match="two is odd"):
            _ = [x async for x in sched.map(half, range(5), concurrency=2)]


# --- the sync form --------------------------------------------------------------------------------


def test_sync_scheduler_runs_without_an_event_loop(tmp_path: Path) -> None:
    """`SyncScheduler` blocks for results: a coroutine, a thread call, a process call, a map with errors in place."""
    with SyncScheduler(retry={"attempts": 2, "delay": 0}) as sched:
        assert sched.submit(steps_helpers.where_am_i)["main"] is True
        assert sched.submit(steps_helpers.burn, 10, kind="cpu") != os.getpid()
        assert sched.submit(steps_helpers.fail_once, str(tmp_path / "marker"), kind="blocking") == "second attempt"
        got = list(sched.map(steps_helpers.slow, [0.0, 0.001], concurrency=2, return_exceptions=True))
        assert got == ["done", "done"]
    with pytest.raises(ExecutorUnavailable, match="with SyncScheduler"):
        sched.submit(steps_helpers.burn)


async def test_sync_scheduler_refuses_a_running_loop() -> None:
    """Inside an event loop the sync form cannot run its own: asyncio says so, and `Scheduler` is the way."""
    with pytest.raises(RuntimeError, match="inside a running event loop; use Scheduler"), SyncScheduler():
        pass


# --- types ------------------------------------------------------------------------------------------

USER_SCRIPT = '''\
from __future__ import annotations

from functools import partial

from orchestrator import Scheduler, SyncScheduler


async def fetch(url: str, *, timeout: float = 1.0) -> bytes:
    return url.encode()


def size(path: str) -> int:
    return len(path)


async def fine() -> None:
    async with Scheduler(retry=3, timeout="10s", limits={"api": {"concurrency": 2}}) as sched:
        body: bytes = await sched.submit(fetch, "http://x")
        n: int = await sched.submit(size, "p", kind="blocking", retry=None, limit="api")
        quick: bytes = await sched.submit(partial(fetch, "http://y", timeout=2.0))
        async for item in sched.map(fetch, ["a", "b"], return_exceptions=True):
            if not isinstance(item, Exception):
                item.decode()
    with SyncScheduler() as blocking:
        m: int = blocking.submit(size, "p")


async def misused() -> None:
    async with Scheduler() as sched:
        wrong: str = await sched.submit(size, "p")  # line 30
        await sched.submit(size, 3)  # line 31
        await sched.submit(size, "p", timout=5)  # line 32
        async for each in sched.map(fetch, ["a"], return_exceptions=True):
            each.decode()  # line 34
    with SyncScheduler() as blocking:
        t: str = blocking.submit(size, "p")  # line 36


def runs() -> None:
    import orchestrator
    result = orchestrator.run("p.yml", timeout=5.0, outputs="read", resume=None)
    orchestrator.run("p.yml", timout=5)  # line 42
    orchestrator.resume("id", forse=True)  # line 43
    result.status.upper()
'''


def test_mypy_strict_checks_what_scripts_do_with_results(tmp_path: Path) -> None:
    """Results carry the callable's return type, arguments are checked against it, options are
    named (the Scheduler's, and `run`'s and `resume`'s): `mypy --strict` passes the right uses and
    flags each misuse on its line."""
    script = tmp_path / "ops_script.py"
    script.write_text(USER_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "cache"), str(script)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    errors = [line for line in done.stdout.splitlines() if ": error: " in line]
    assert sorted({int(line.split(":")[1]) for line in errors}) == [30, 31, 32, 34, 36, 42, 43], done.stdout + done.stderr
    assert any('"timout"' in line and 'did you mean "timeout"' in line for line in errors)
    assert any('"Exception" of "bytes | Exception" has no attribute "decode"' in line for line in errors)
    assert done.returncode == 1
