"""Named limits: a concurrency cap (fixed, or adaptive with `concurrency: auto`) and a start rate, shared
by every step and item that names them."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from orchestrator.engine.adaptive import Gradient
from orchestrator.executors.capacity import Capacity
from orchestrator.model.playbook import AUTO_MAX, AUTO_MIN, LimitSpec

if TYPE_CHECKING:
    from collections.abc import Callable


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

    With `concurrency: auto` the capacity's total is written by a `Gradient` (see `adaptive.py`)
    from what the attempts report (`sampled`, `dropped`). Any limit can be held off: a server's
    `Retry-After` on one attempt stops every attempt under the limit from starting until it passes.
    """

    __slots__ = ("_capacity", "_rate", "_until", "adaptive", "name")

    def __init__(self, name: str, spec: LimitSpec) -> None:
        self.name = name
        self._until = 0.0  # no attempt starts before this time (time.monotonic); 0: no hold-off
        self.adaptive: Gradient | None = None
        if spec.concurrency == "auto":
            low = spec.min_concurrency or AUTO_MIN
            high = spec.max_concurrency or max(AUTO_MAX, low)
            self._capacity: Capacity | None = Capacity(low)
            self.adaptive = Gradient(self._capacity, low, high, time.monotonic())
        else:
            self._capacity = Capacity(spec.concurrency) if spec.concurrency else None
        self._rate = RateLimiter(spec.rate) if spec.rate else None

    @classmethod
    def auto(cls, name: str, low: int | None, high: int | None) -> Limit:
        """An adaptive limit of one step's own (`concurrency: auto` on a `for_each` step)."""

        return cls(name, LimitSpec(concurrency="auto", min_concurrency=low, max_concurrency=high))

    @property
    def concurrency(self) -> int | None:
        """The cap now (for an adaptive limit, the one it has settled on so far); None if uncapped."""
        return self._capacity.total if self._capacity is not None else None

    def take(self) -> bool:
        """Take the limit at once if it is free (a slot, no hold-off, and no rate wait due), without
        awaiting; False, having taken nothing, otherwise. Most attempts find it free: `acquire` is
        for the rest."""
        until = self._until
        if until:
            if until > time.monotonic():
                return False
            self._until = 0.0  # passed: later takes need not read the clock
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
        try:
            # A slot taken during a hold-off waits it out: nothing under this limit starts before it
            # ends. A time, not an event: another Retry-After may move the end while we sleep.
            while (wait := self._until - time.monotonic()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
            if self._rate is not None:
                await self._rate.acquire()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self._capacity is not None:
            self._capacity.give_back()

    def hold_off(self, seconds: float) -> None:
        """No attempt under this limit starts in the next `seconds` (a server's Retry-After)."""
        self._until = max(self._until, time.monotonic() + seconds)

    def sampled(self, rtt: float, now: float) -> None:
        """An attempt under this limit succeeded after `rtt` seconds (adaptive limits learn from it)."""
        if self.adaptive is not None:
            self.adaptive.sample(rtt, now)

    def dropped(self, started: float, now: float) -> None:
        """An attempt under this limit, started at `started`, met overload (429, 503, a timeout)."""
        if self.adaptive is not None:
            self.adaptive.drop(started, now)
