"""ProcessPool: parallelism, round trips, worker death, cancellation, sys.path, log context, closing."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import pickle
import sys
import time
from typing import TYPE_CHECKING

import psutil
import pytest

from orchestrator.errors import ExecutorUnavailable, WorkerDied
from orchestrator.executors.processes import ProcessPool, RemoteError

from . import cpu_funcs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path


@pytest.fixture
async def pool() -> AsyncIterator[ProcessPool]:
    pool = ProcessPool(2)
    try:
        yield pool
    finally:
        await pool.aclose()


def descendants() -> set[int]:
    # Forkserver workers are children of the forkserver, hence recursive.
    return {child.pid for child in psutil.Process().children(recursive=True)}


async def test_cpu_bound_calls_run_in_parallel_on_distinct_workers(pool: ProcessPool) -> None:
    """Four CPU-bound calls on a 2-worker pool run on exactly two worker processes, two at a time."""
    pids = await asyncio.gather(*(pool.call(cpu_funcs.spin_pid, (0.2,)) for _ in range(4)))
    assert len(set(pids)) == 2
    assert set(pids) == set(pool.pids())


async def test_results_and_exceptions_round_trip(pool: ProcessPool) -> None:
    """Return values come back; a ValueError raised in the worker is a ValueError here, with the worker's traceback in its notes."""
    assert await pool.call(cpu_funcs.add, (2, 3), {"times": 10}) == 50
    with pytest.raises(ValueError, match="bad input") as caught:
        await pool.call(cpu_funcs.raise_value_error, ("bad input",))
    notes = "\n".join(caught.value.__notes__)
    assert "in worker process" in notes
    assert "Traceback (most recent call last)" in notes
    assert "raise_value_error" in notes


async def test_exception_that_cannot_be_unpickled_arrives_as_remote_error(pool: ProcessPool) -> None:
    """An exception the parent cannot rebuild arrives as RemoteError carrying its type name, message and traceback."""
    with pytest.raises(RemoteError, match="TwoArgError: 7: bad gateway") as caught:
        await pool.call(cpu_funcs.raise_two_arg_error)
    assert caught.value.type_name.endswith("cpu_funcs.TwoArgError")
    assert "raise TwoArgError" in caught.value.traceback


async def test_unpicklable_result_is_an_error_naming_its_type(pool: ProcessPool) -> None:
    """A result that cannot be pickled fails the call with a TypeError naming the result's type, and the worker stays usable."""
    with pytest.raises(TypeError, match=r"return_lock cannot be pickled: _thread\.lock"):
        await pool.call(cpu_funcs.return_lock)
    assert await pool.call(cpu_funcs.add, (1, 1)) == 2


async def test_unpicklable_callable_fails_before_any_worker_starts(pool: ProcessPool) -> None:
    """A lambda fails to pickle at once, with a note explaining why, and no worker process is started."""
    not_picklable: Callable[[], int] = lambda: 1  # noqa: E731
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)) as caught:
        await pool.call(not_picklable)
    assert "must be picklable" in "\n".join(caught.value.__notes__)
    assert pool.pids() == []


@pytest.mark.parametrize(
    ("deadly", "args", "expected", "exitcode"),
    [
        (cpu_funcs.exit_now, (3,), "exit code 3", 3),
        (cpu_funcs.kill_self, (), "killed by signal 9, SIGKILL", -9),
    ],
    ids=["os._exit", "SIGKILL"],
)
async def test_dead_worker_fails_only_its_own_call(
    pool: ProcessPool, deadly: Callable[..., None], args: tuple[object, ...], expected: str, exitcode: int
) -> None:
    """A worker dying mid-call raises WorkerDied for that call only; a concurrent call and later calls succeed."""
    bystander = asyncio.create_task(pool.call(cpu_funcs.sleep_pid, (0.5,)))
    with pytest.raises(
        WorkerDied, match=f"died \\({expected}\\) while running .*cpu_funcs:{deadly.__name__}"
    ) as caught:
        await pool.call(deadly, args)
    assert caught.value.exitcode == exitcode
    assert caught.value.pid not in pool.pids()
    assert isinstance(await bystander, int)  # the call running on the other worker completed
    assert await pool.call(cpu_funcs.add, (20, 22)) == 42


async def test_cancelling_a_call_kills_its_worker(pool: ProcessPool) -> None:
    """Cancelling a running call (a timeout) kills its worker process quickly; other calls and the pool carry on."""
    await asyncio.gather(pool.call(cpu_funcs.getpid), pool.call(cpu_funcs.getpid))  # start both workers
    before = set(pool.pids())
    bystander = asyncio.create_task(pool.call(cpu_funcs.sleep_pid, (1.0,)))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pool.call(cpu_funcs.sleep_pid, (30,)), timeout=0.3)
    assert time.monotonic() - started < 5  # not the 30 s the call asked for
    killed = before - set(pool.pids())
    assert len(killed) == 1
    # By the time the cancellation propagates, the worker has been terminated and reaped.
    assert not any(psutil.pid_exists(pid) for pid in killed)
    assert await bystander in before - killed
    assert await pool.call(cpu_funcs.getpid) not in killed


async def test_cancelling_a_call_while_its_worker_starts_leaks_nothing() -> None:
    """A call cancelled while its worker process is still starting leaves that worker to the pool, not orphaned."""
    pool = ProcessPool(1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pool.call(cpu_funcs.getpid), timeout=0.001)
    pid = await pool.call(cpu_funcs.getpid)
    assert pool.pids() == [pid]
    await pool.aclose()
    assert pid not in descendants()


async def test_cancelling_a_call_still_waiting_for_a_worker_kills_nothing() -> None:
    """Cancelling a call queued behind a busy worker leaves that worker and its call alone."""
    async with ProcessPool(1) as pool:
        running = asyncio.create_task(pool.call(cpu_funcs.sleep_pid, (0.4,)))
        await asyncio.sleep(0.1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pool.call(cpu_funcs.getpid), timeout=0.05)
        pid = await running
        assert pool.pids() == [pid]
        assert await pool.call(cpu_funcs.getpid) == pid


async def test_sys_path_makes_modules_next_to_a_playbook_importable(tmp_path: Path) -> None:
    """Entries of sys_path are prepended to the worker's sys.path, so modules in that directory import there."""
    (tmp_path / "pool_sys_path_probe.py").write_text("def answer():\n    return 42\n")
    assert importlib.util.find_spec("pool_sys_path_probe") is None  # not importable in the parent
    async with ProcessPool(1, sys_path=[str(tmp_path)]) as pool:
        assert await pool.call(cpu_funcs.call_in_module, ("pool_sys_path_probe", "answer")) == 42


async def test_log_context_is_bound_in_the_worker_for_that_call_only() -> None:
    """log_context is visible through structlog's contextvars in the worker, and gone for the next call."""
    async with ProcessPool(1) as pool:
        context = {"step": "render_config", "host": "web1"}
        assert await pool.call(cpu_funcs.log_context, log_context=context) == context
        assert await pool.call(cpu_funcs.log_context) == {}


async def test_initializer_runs_in_each_worker_and_its_failure_is_reported() -> None:
    """The initializer runs at worker start; if it raises, calls fail with its exception instead of a bare death."""
    async with ProcessPool(1, initializer=cpu_funcs.set_marker, initargs=("configured",)) as pool:
        assert await pool.call(cpu_funcs.read_marker) == "configured"
    async with ProcessPool(1, initializer=cpu_funcs.failing_initializer) as pool:
        with pytest.raises(RuntimeError, match="no logging config") as caught:
            await pool.call(cpu_funcs.getpid)
        assert "worker initializer" in "\n".join(caught.value.__notes__)


async def test_constructing_a_pool_starts_nothing() -> None:
    """A pool that was never called starts no process, and closing it is a no-op."""
    before = descendants()
    pool = ProcessPool(4)
    assert pool.pids() == []
    assert descendants() <= before
    await pool.aclose()
    await pool.aclose()


async def test_aclose_leaves_no_worker_processes_and_is_idempotent() -> None:
    """aclose() stops idle workers, terminates busy ones (their calls fail), leaves no process behind, and can be repeated."""
    pool = ProcessPool(2)
    busy = asyncio.create_task(pool.call(cpu_funcs.sleep_pid, (30,)))
    await pool.call(cpu_funcs.getpid)  # the other worker, idle afterwards
    for _ in range(200):  # the busy call's worker may still be starting (starts run in a thread)
        if len(pool.pids()) == 2:
            break
        await asyncio.sleep(0.05)
    pids = set(pool.pids())
    assert len(pids) == 2 and pids <= descendants()
    await pool.aclose()
    with pytest.raises(WorkerDied, match="SIGTERM") as caught:
        await busy
    assert "the pool was closed" in "\n".join(caught.value.__notes__)
    assert pool.pids() == []
    assert not pids & descendants()
    await pool.aclose()
    with pytest.raises(ExecutorUnavailable, match="closed"):
        await pool.call(cpu_funcs.getpid)


async def test_what_a_worker_writes_to_stderr_reaches_the_parents_sys_stderr(
    pool: ProcessPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker lines go through the parent's sys.stderr (where a progress view or a test's capture is),
    whole lines first (bytes written to sys.stderr.buffer too), the unfinished rest before the
    reply; and from a worker that then dies."""
    seen = io.StringIO()
    monkeypatch.setattr(sys, "stderr", seen)
    await pool.call(cpu_funcs.write_stderr, (["one", "two", "from a thread"], "no newline"))
    assert seen.getvalue() == "one\ntwo\nfrom a thread\nas bytes\nno newline"
    with pytest.raises(WorkerDied):
        await pool.call(cpu_funcs.write_stderr_then_exit, ("last words", 3))
    assert seen.getvalue().endswith("no newlinelast words\n")


async def test_waiting_calls_are_served_first_come_first_served() -> None:
    """Calls queued behind a busy worker run in the order they arrived."""
    async with ProcessPool(1) as pool:
        order: list[int] = []

        async def queued(i: int) -> None:
            await pool.call(cpu_funcs.getpid)
            order.append(i)

        running = asyncio.create_task(pool.call(cpu_funcs.sleep_pid, (0.3,)))
        await asyncio.sleep(0.05)
        waiting = []
        for i in range(4):
            waiting.append(asyncio.create_task(queued(i)))
            await asyncio.sleep(0)  # in the queue before the next one
        await asyncio.gather(running, *waiting)
        assert order == [0, 1, 2, 3]
        assert len(pool.pids()) == 1


async def test_a_worker_that_dies_while_idle_is_replaced_not_failed() -> None:
    """A worker killed between calls is dropped; the next call gets a new worker and succeeds."""
    async with ProcessPool(1) as pool:
        first = await pool.call(cpu_funcs.getpid)
        psutil.Process(first).kill()
        for _ in range(100):  # the pool notices the death through the loop's reader on its sentinel
            if first not in pool.pids():
                break
            await asyncio.sleep(0.01)
        second = await pool.call(cpu_funcs.getpid)
        assert second != first
        assert pool.pids() == [second]


async def test_aclose_fails_the_calls_waiting_for_a_worker() -> None:
    """Calls queued for a slot when the pool closes fail with ExecutorUnavailable, not WorkerDied."""
    pool = ProcessPool(1)
    busy = asyncio.create_task(pool.call(cpu_funcs.sleep_pid, (30,)))
    await asyncio.sleep(0.05)
    waiting = [asyncio.create_task(pool.call(cpu_funcs.getpid)) for _ in range(3)]
    await asyncio.sleep(0.05)
    await pool.aclose()
    for task in waiting:
        with pytest.raises(ExecutorUnavailable, match="closed"):
            await task
    with pytest.raises((WorkerDied, ExecutorUnavailable)):
        await busy  # killed if it had started, else the start itself met the closed pool
    assert pool.pids() == []


async def test_aclose_during_a_worker_start_leaves_no_process() -> None:
    """A pool closed while a worker process is still starting reaps that process once it is up."""
    before = descendants()
    pool = ProcessPool(1)
    call = asyncio.create_task(pool.call(cpu_funcs.getpid))
    await asyncio.sleep(0)  # the start is under way in its helper thread
    await pool.aclose()
    with pytest.raises(ExecutorUnavailable, match="closed"):
        await call
    assert pool.pids() == []
    # Only the forkserver (started by the first pool of this process) may be new.
    for pid in descendants() - before:
        assert "forkserver" in " ".join(psutil.Process(pid).cmdline())
