"""`Capacity`: the one primitive behind every cap on work in flight.

Named limits (`limits:` in a playbook) and the process pool's admission both ask the same
question: may one more call start now, and if not, who goes next? The answer is anyio's and trio's
``CapacityLimiter``: a count of holders under a total, waiters served first in, first out, and a
freed slot handed straight to the longest waiter (so no newcomer overtakes it and none starves).
The total may change while the capacity is in use: raising it admits waiters at once, lowering it
lets the current holders drain.

`try_take` and `give_back` are plain methods, not a context manager, and the waiters are futures
in a deque rather than an ``asyncio.Semaphore``: every attempt of every item takes and gives back
each slot it needs, and the semaphore's acquire (which scans its waiters) plus the two coroutines
of ``async with`` cost about 2 µs of it.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Capacity:
    """At most `total` holders at once; the others wait in FIFO order."""

    __slots__ = ("_held", "_total", "_waiters")

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError(f"a capacity needs a total of at least 1, got {total}")
        self._total = total
        self._held = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def total(self) -> int:
        return self._total

    @total.setter
    def total(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"a capacity needs a total of at least 1, got {value}")
        self._total = value
        while self._held < self._total and self._hand_over():
            self._held += 1

    @property
    def held(self) -> int:
        """Slots taken now."""
        return self._held

    @property
    def waiting(self) -> int:
        """Callers queued for a slot (a cancelled one may be counted until the queue reaches it)."""
        return len(self._waiters)

    def try_take(self) -> bool:
        """Take a slot at once if one is free and nobody waits for it; else False, having taken nothing."""
        if self._held < self._total and not self._waiters:
            self._held += 1
            return True
        return False

    async def take(self) -> None:
        """Take a slot, waiting in line for one if none is free."""
        if self.try_take():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.give_back()  # the slot was handed over as we were cancelled: pass it on
            elif waiter in self._waiters:  # a release may have dropped it already, as cancelled
                self._waiters.remove(waiter)
            raise

    def give_back(self) -> None:
        """Return a slot: it goes to the longest waiter, unless the total has shrunk below the holders."""
        if self._held <= self._total and self._hand_over():
            return  # the slot changes hands; the count of holders is unchanged
        self._held -= 1

    def fail_waiters(self, error: BaseException) -> None:
        """Every caller waiting for a slot raises `error` instead (the owner is closing)."""
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)

    def _hand_over(self) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return True
        return False
