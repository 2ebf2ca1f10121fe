"""Named limits: a concurrency cap and a start rate, shared by every step and item that names them."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from orchestrator.model.playbook import LimitSpec


class RateLimiter:
    """Spaces starts at least 1/rate seconds apart (a token bucket of depth one), so no one-second
    window sees more than rate + 1 starts. Reservations are taken synchronously, so concurrent
    callers queue in order without a lock."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / per_second
        self.clock = clock
        self._next = 0.0

    def take(self) -> bool:
        """Start now if no wait is due (reserving the next slot), without awaiting; else False."""
        now = self.clock()
        if self._next > now:
            return False
        self._next = now + self.interval
        return True

    async def acquire(self) -> None:
        now = self.clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class Limit:
    """A named cap: at most `concurrency` holders at once, started no faster than `rate`.

    `acquire` and `release` rather than a context manager, and a counter with a queue of waiters
    rather than asyncio.Semaphore: every attempt of every item takes and gives back each limit it
    names, and the semaphore's acquire (which scans its waiters) plus two coroutines for ``async
    with`` cost ~2 µs of it. A released slot is handed to the longest waiter, so none starves.
    """

    def __init__(self, name: str, spec: LimitSpec) -> None:
        self.name = name
        self._capped = bool(spec.concurrency)
        self._free = spec.concurrency or 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._rate = RateLimiter(spec.rate) if spec.rate else None

    def take(self) -> bool:
        """Take the limit at once if it is free (a slot, and no rate wait due), without awaiting;
        False, having taken nothing, otherwise. Most attempts find it free: `acquire` is for the rest."""
        if self._capped and (self._free <= 0 or self._waiters):
            return False
        if self._rate is not None and not self._rate.take():
            return False
        if self._capped:
            self._free -= 1
        return True

    async def acquire(self) -> None:
        if self._capped:
            if self._free > 0 and not self._waiters:
                self._free -= 1
            else:
                await self._wait()
        if self._rate is not None:
            try:
                await self._rate.acquire()
            except BaseException:
                self.release()
                raise

    async def _wait(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over as we were cancelled: pass it on
            elif waiter in self._waiters:  # a release may have dropped it already, as cancelled
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        if not self._capped:
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes to this waiter directly; _free is unchanged
                return
        self._free += 1
