"""Named limits: a concurrency cap and a start rate, shared by every step and item that names them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType

from orchestrator.model.playbook import LimitSpec


class RateLimiter:
    """Spaces starts at least 1/rate seconds apart (a token bucket of depth one), so no one-second
    window sees more than rate + 1 starts. Reservations are taken synchronously, so concurrent
    callers queue in order without a lock."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / per_second
        self.clock = clock
        self._next = 0.0

    async def acquire(self) -> None:
        now = self.clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class Limit:
    """A named cap: at most `concurrency` holders at once, started no faster than `rate`."""

    def __init__(self, name: str, spec: LimitSpec) -> None:
        self.name = name
        self._sem = asyncio.Semaphore(spec.concurrency) if spec.concurrency else None
        self._rate = RateLimiter(spec.rate) if spec.rate else None

    async def __aenter__(self) -> Limit:
        if self._sem is not None:
            await self._sem.acquire()
        if self._rate is not None:
            try:
                await self._rate.acquire()
            except BaseException:
                if self._sem is not None:
                    self._sem.release()
                raise
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self._sem is not None:
            self._sem.release()
