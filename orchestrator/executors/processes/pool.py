"""`ProcessPool`: admit calls, give each a worker, and take the worker back when the call ends.

Admission is a :class:`Capacity` of ``workers`` slots: a call takes a slot (waiting first come,
first served if none is free), then pops the most recently used idle worker or starts one. When the
call ends its worker goes back to the idle stack, or is discarded if it broke or its call was
cancelled, and the slot is given back, to the longest waiter if there is one. Slots belong to
calls, not workers, so a dead worker frees its slot at once and the next call starts a new one.
"""

from __future__ import annotations

import asyncio
import os
from functools import partial
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from orchestrator.errors import ExecutorUnavailable, WorkerDied
from orchestrator.executors.capacity import Capacity
from orchestrator.executors.processes.child import describe
from orchestrator.executors.processes.handle import Worker, WorkerGone
from orchestrator.executors.processes.protocol import pickle_call, settle
from orchestrator.executors.processes.startup import Launcher, Started

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType

T = TypeVar("T")

_EXIT_GRACE = 1.0  # a worker asked to stop, or whose pipe closed, gets this long to exit by itself


class ProcessPool:
    """Run picklable callables in worker processes, one call per worker at a time.

    Workers start lazily, up to ``workers``; idle ones are reused, and callers wait first come,
    first served for a free worker. See the package docstring for failure and cancellation.
    """

    name = "processes"

    def __init__(
        self,
        workers: int | None = None,
        *,
        start_method: str = "forkserver",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[object, ...] = (),
        sys_path: Sequence[str] = (),
    ) -> None:
        size = (os.cpu_count() or 1) if workers is None else workers
        if size < 1:
            raise ValueError(f"workers must be at least 1, got {size}")
        self._launcher = Launcher(start_method, initializer, tuple(initargs), sys_path)
        self._capacity = Capacity(size)  # one slot per call between admission and its end
        self._loop: asyncio.AbstractEventLoop | None = None
        self._members: set[Worker] = set()  # started and not discarded
        self._idle: list[Worker] = []  # LIFO: the most recently used worker has the warmest caches
        self._unreaped: set[Worker] = set()
        self._tasks: set[asyncio.Future[Any]] = set()  # starts and reapers in flight
        self._closed = False

    async def call(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, object] | None = None,
        *,
        log_context: Mapping[str, object] | None = None,
    ) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker process and return its result.

        ``log_context`` is bound with structlog's contextvars in the worker for this call only.
        Raises what ``fn`` raised (the worker's traceback in its notes), :class:`WorkerDied` if the
        worker process died, and on cancellation terminates the worker running the call.
        """
        # Pickle before taking a worker: an unpicklable call fails at once, starts no process,
        # and never holds a worker while it fails.
        payload = pickle_call(fn, args, kwargs, log_context)
        if self._closed:
            raise _closed_error()
        loop = self._bind_loop()
        if not self._capacity.try_take():
            await self._capacity.take()
        # Admitted: the call holds a slot, and every way out below gives it back exactly once.
        worker = self._pop_idle()
        if worker is None:
            worker = await self._start_worker(loop)
        reply = worker.request(payload)
        try:
            data = await reply
        except asyncio.CancelledError:
            if reply.done() and not reply.cancelled() and reply.exception() is None:
                self._put_back(worker)  # the reply was already in: the worker is clean, keep it
            else:
                # Real cancellation: the worker is still computing, so it goes. Wait (shielded)
                # until it is reaped, so that a timeout really means the work has stopped.
                await asyncio.shield(self._retire(worker, exit_grace=0))
            raise
        except WorkerGone:
            exitcode = await asyncio.shield(self._retire(worker, exit_grace=_EXIT_GRACE))
            died = WorkerDied(worker.pid, exitcode, describe(fn))
            if self._closed:
                died.add_note("the pool was closed while the call was running")
            raise died from None
        result, raised, reusable = settle(data, fn, worker.pid)
        if reusable:
            self._put_back(worker)
        else:
            self._retire(worker, exit_grace=_EXIT_GRACE)  # it exits by itself after replying
        if raised is not None:
            raise raised
        return cast("T", result)

    def pids(self) -> list[int]:
        """Pids of the live worker processes."""
        return [worker.pid for worker in self._members if not worker.broken]

    async def aclose(self) -> None:
        """Fail the waiting calls, stop idle workers, terminate busy ones, reap them all. Idempotent."""
        self._closed = True
        self._capacity.fail_waiters(_closed_error())
        for worker in list(self._members):
            if worker in self._idle:
                worker.stop()
                self._discard(worker, exit_grace=_EXIT_GRACE)
            else:
                self._discard(worker, exit_grace=0)  # busy: its call fails with WorkerDied
        try:
            # A start in flight delivers its process to a closed pool, which discards it at once
            # and adds a reaper: loop until nothing is left.
            while self._tasks:
                await asyncio.shield(asyncio.gather(*self._tasks, return_exceptions=True))
        except asyncio.CancelledError:
            # Cancelled while closing (a second Ctrl-C, loop shutdown): still leave no process behind.
            for worker in self._unreaped:
                worker.kill()
            raise

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- a call's worker: taking it, and giving it back with the call's slot ----------------------

    def _pop_idle(self) -> Worker | None:
        """The most recently used idle worker for an admitted call, or None: start one."""
        if self._closed:  # closed while the call waited for its slot
            self._capacity.give_back()
            raise _closed_error()
        while self._idle:
            worker = self._idle.pop()
            if not worker.broken:
                return worker
            # Died while idle, its exit not yet noticed: the call has not started, so it goes
            # to another worker rather than fail.
            self._discard(worker, exit_grace=_EXIT_GRACE)
        return None

    def _put_back(self, worker: Worker) -> None:
        """A call is over and its worker usable: the worker goes idle, the slot back."""
        if worker.broken or self._closed:
            if self._closed and not worker.broken:
                worker.stop()
            self._discard(worker, exit_grace=_EXIT_GRACE)
        else:
            self._idle.append(worker)
        self._capacity.give_back()

    def _retire(self, worker: Worker, exit_grace: float) -> asyncio.Task[int | None]:
        """A call is over and its worker not to be used again: discard it, give the slot back."""
        reaper = self._discard(worker, exit_grace)
        self._capacity.give_back()  # the next call starts a new worker while this one is reaped
        return reaper

    def _discard(self, worker: Worker, exit_grace: float) -> asyncio.Task[int | None]:
        """Take a worker out of the pool and reap it in the background. Idempotent."""
        if worker in self._members:
            self._members.remove(worker)
            if worker in self._idle:
                self._idle.remove(worker)
        if worker.reaper is None:
            worker.reaper = asyncio.get_running_loop().create_task(self._reap(worker, exit_grace))
            self._track(worker.reaper)
        return worker.reaper

    def _on_broken(self, worker: Worker) -> None:
        # A busy worker's call notices by itself (its reply fails); an idle one is dropped here.
        if worker in self._idle:
            self._discard(worker, exit_grace=_EXIT_GRACE)

    async def _reap(self, worker: Worker, exit_grace: float) -> int | None:
        try:
            return await worker.finish(exit_grace)
        finally:
            self._unreaped.discard(worker)

    # -- starting workers ------------------------------------------------------------------------

    async def _start_worker(self, loop: asyncio.AbstractEventLoop) -> Worker:
        """Start a worker for an admitted call that found none idle."""
        started: asyncio.Future[Worker] = loop.create_future()
        self._track(started)
        self._launcher.start(loop, partial(self._deliver, loop, started))
        try:
            worker = await asyncio.shield(started)
        except asyncio.CancelledError:
            # The helper thread carries on regardless; the process it starts must not leak. It
            # joins the pool when started, and the call's slot stays taken until then.
            started.add_done_callback(self._adopt)
            raise
        except BaseException:
            self._capacity.give_back()
            raise
        if self._closed:  # closed between the start and now: aclose() has discarded the worker
            self._put_back(worker)
            raise _closed_error()
        return worker

    def _deliver(
        self,
        loop: asyncio.AbstractEventLoop,
        started: asyncio.Future[Worker],
        outcome: Started | BaseException,
    ) -> None:
        """On the loop, when a start ends: the new process joins the pool before anyone hears of
        it, so that aclose() either finds it among the members or sees the closed pool here."""
        if not isinstance(outcome, BaseException):
            worker = Worker(*outcome, loop, self._on_broken)
            self._members.add(worker)
            self._unreaped.add(worker)
            if not self._closed:
                started.set_result(worker)
                return
            worker.stop()
            self._discard(worker, exit_grace=_EXIT_GRACE)
            outcome = _closed_error()
        started.set_exception(outcome)

    def _adopt(self, started: asyncio.Future[Worker]) -> None:
        """A start ended after its call was cancelled: the worker goes idle, the slot back."""
        if started.cancelled() or started.exception() is not None:
            self._capacity.give_back()
        else:
            self._put_back(started.result())

    # -- bookkeeping -----------------------------------------------------------------------------

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Workers are watched by one loop's readers; moving is fine once none is left.
            if self._loop is not None and (self._unreaped or self._tasks or self._capacity.held):
                raise RuntimeError("ProcessPool is in use by another event loop")
            self._loop = loop
        return loop

    def _track(self, future: asyncio.Future[Any]) -> None:
        self._tasks.add(future)
        future.add_done_callback(self._tasks.discard)


def _closed_error() -> ExecutorUnavailable:
    return ExecutorUnavailable("ProcessPool is closed")
