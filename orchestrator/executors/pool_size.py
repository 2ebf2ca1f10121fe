"""`workers: auto` for the thread pool: as many threads as the calls in flight need, and no more
than their latency says are useful.

Little's law: the calls in a system, L, are its throughput X times each call's time W. A pool
serving a plan's blocking steps needs L = the calls the plan has in flight at once (a `for_each`
at concurrency 200 of blocking calls asks for 200), which the pool sees directly as the calls
running plus those waiting for a thread. So admission (a `Capacity`) grows to that number the
moment a call finds no free thread, up to `most`.

More threads help only while each call's time stays what it was with few: calls that hold the
GIL (CPU work tagged `blocking`) or a server that slows as more calls reach it make W grow with
the pool, and then the threads the throughput needs are X times the uncontended time W0. Once per
window of calls, if W has grown past 1.5 x W0, the pool's ceiling becomes twice X x W0 (at least
`least`); while W stays near W0 the ceiling is `most`.

Threads are started by the ThreadPoolExecutor when a call finds none idle, so the pool holds at
most the largest number of calls admitted at once; a thread, once started, lives until the pool
closes (Python's pool does not retire idle threads), which costs memory, not CPU.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from orchestrator.executors.capacity import Capacity

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable
    from concurrent.futures import Executor

#: W above W0 by this factor means more threads no longer add throughput.
CONTENDED = 1.5
#: A window closes after a pool's worth of calls, or after this long with at least 4.
WINDOW_SECONDS = 1.0


class PoolSize:
    """Admission to a thread pool whose size follows demand, capped by contention (see above)."""

    __slots__ = ("_busy", "_count", "_opened", "capacity", "ceiling", "floor", "least", "most", "peak")

    def __init__(self, least: int, most: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.least, self.most = least, most
        self.capacity = Capacity(least)
        self.ceiling = most
        #: The most threads admitted at once so far.
        self.peak = 0
        #: The lowest mean call time of a window (W0), seconds; infinite before the first window.
        self.floor = math.inf
        self._count, self._busy, self._opened = 0, 0.0, clock()

    async def run(self, loop: asyncio.AbstractEventLoop, pool: Executor, fn: Callable[[], Any]) -> Any:
        capacity = self.capacity
        if not capacity.try_take():
            wanted = min(capacity.held + capacity.waiting + 1, self.ceiling)  # Little's L, seen directly
            if wanted > capacity.total:
                capacity.total = wanted
            if not capacity.try_take():
                await capacity.take()
        if capacity.held > self.peak:
            self.peak = capacity.held
        clock = time.monotonic
        started = clock()
        try:
            return await loop.run_in_executor(pool, fn)
        finally:
            capacity.give_back()
            now = clock()
            self.finished(now - started, now)

    def finished(self, seconds: float, now: float) -> None:
        """A call took `seconds` on its thread; once per window, the ceiling is set anew."""
        self._count += 1
        self._busy += seconds
        elapsed = now - self._opened
        if self._count < max(4, self.capacity.total) and elapsed < WINDOW_SECONDS:
            return
        if self._count < 4:
            return
        mean, throughput = self._busy / self._count, self._count / max(elapsed, 1e-9)
        self._count, self._busy, self._opened = 0, 0.0, now
        self.floor = min(self.floor, mean)
        if mean > self.floor * CONTENDED:
            self.ceiling = max(self.least, min(self.most, math.ceil(2 * throughput * self.floor)))
            if self.capacity.total > self.ceiling:
                self.capacity.total = self.ceiling
        else:
            self.ceiling = self.most
