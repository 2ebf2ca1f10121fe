"""Named limits: a concurrency cap and a start rate, shared by every step and item that names them."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from orchestrator.executors.capacity import Capacity

if TYPE_CHECKING:
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
    """A named cap: at most `concurrency` holders at once (a `Capacity`), started no faster than `rate`.

    `take` and `release` rather than a context manager: every attempt of every item takes and gives
    back each limit it names, so the common case (the limit is free) is one synchronous call.
    """

    __slots__ = ("_capacity", "_rate", "name")

    def __init__(self, name: str, spec: LimitSpec) -> None:
        self.name = name
        self._capacity = Capacity(spec.concurrency) if spec.concurrency else None
        self._rate = RateLimiter(spec.rate) if spec.rate else None

    def take(self) -> bool:
        """Take the limit at once if it is free (a slot, and no rate wait due), without awaiting;
        False, having taken nothing, otherwise. Most attempts find it free: `acquire` is for the rest."""
        capacity = self._capacity
        if capacity is not None and not capacity.try_take():
            return False
        if self._rate is not None and not self._rate.take():
            if capacity is not None:
                capacity.give_back()
            return False
        return True

    async def acquire(self) -> None:
        if self._capacity is not None:
            await self._capacity.take()
        if self._rate is not None:
            try:
                await self._rate.acquire()
            except BaseException:
                self.release()
                raise

    def release(self) -> None:
        if self._capacity is not None:
            self._capacity.give_back()
