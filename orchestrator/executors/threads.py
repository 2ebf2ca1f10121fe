"""A thread pool for blocking calls, driven from the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.executors.pool_size import PoolSize
from orchestrator.executors.probe import Probe

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.executors.base import Invocation

#: The name of every pool thread starts with this (the CLI looks for calls still running at exit).
THREAD_PREFIX = "orchestrator-blocking"
#: `workers: auto`: the pool starts with this many threads and never holds more than AUTO_MOST.
AUTO_LEAST, AUTO_MOST = 4, 256


class ThreadExecutor:
    """Runs blocking calls on a ThreadPoolExecutor, with the caller's contextvars (log context) copied
    into the thread. Cancelling the awaiting task does not stop a thread that is already running: Python
    cannot interrupt one. The step is marked cancelled at once and the thread's result is discarded.

    With `workers="auto"` the pool's size follows the calls in flight and their latency (`PoolSize`,
    in pool_size.py), between AUTO_LEAST and AUTO_MOST threads; with a number it is that number."""

    name = "threads"

    def __init__(self, workers: int | Literal["auto"] = 32) -> None:
        self.sizer = PoolSize(AUTO_LEAST, AUTO_MOST) if workers == "auto" else None
        #: The most threads the pool may start.
        self.workers = AUTO_MOST if workers == "auto" else workers
        self._pool: ThreadPoolExecutor | None = None

    @property
    def size(self) -> int:
        """The threads calls may use at once now."""
        return self.sizer.capacity.total if self.sizer is not None else self.workers

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=THREAD_PREFIX)
        return self._pool

    async def run(self, call: Invocation, log_context: Mapping[str, Any]) -> Any:
        # A probe wraps only what its dispatch found not to be a coroutine function (`engine/timeline.py`).
        if type(call.fn) is not Probe and inspect.iscoroutinefunction(call.fn):
            raise TypeError(f"{call.fn.__qualname__} is a coroutine function; run it as non-blocking, not on a thread")
        ctx = contextvars.copy_context()
        fn = functools.partial(ctx.run, call.fn, *call.args, **call.kwargs)
        if self.sizer is not None:
            return await self.sizer.run(asyncio.get_running_loop(), self._executor(), fn)
        return await asyncio.get_running_loop().run_in_executor(self._executor(), fn)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # Queued calls are dropped; running ones finish in the background (threads cannot be killed).
            pool.shutdown(wait=False, cancel_futures=True)


def running_blocking_calls(grace: float = 0.5) -> int:
    """How many pool threads are still running a call after `grace` seconds for idle ones to end.

    Python cannot stop a thread: a call stuck in a vendor SDK outlives its step (a timeout, a
    cancellation), and the interpreter waits for pool threads at exit."""
    threads = [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]
    deadline = time.monotonic() + grace
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return sum(thread.is_alive() for thread in threads)
