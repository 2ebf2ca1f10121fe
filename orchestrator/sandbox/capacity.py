"""The sandbox's capacity: at most N requests served at once, a queue behind them, 429 beyond it.

A real API has a concurrency it serves well. Past it, requests queue (their latency grows with the
queue) and, once the queue is as long as the capacity itself, new requests are refused with 429
and a `Retry-After` saying how long the queue ahead needs to drain. With a capacity of N and a
`latency` of L, the sandbox then serves at most N / L requests per second whatever the client
does, and the client's best concurrency lies between N (all slots busy) and 2N (429s start).

The capacity is read from the live settings on every arrival and departure, so changing it while
the sandbox runs (PATCH /v1/_settings) takes effect at once: a larger capacity admits queued
requests straight away; a smaller one lets the requests in service finish.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque


class Admission:
    """The slots and FIFO queue in front of the sandbox's handlers. Event-loop thread only."""

    def __init__(self) -> None:
        self.serving = 0
        self.queue: deque[asyncio.Future[None]] = deque()
        #: The most requests in the sandbox (served and queued) at once since the last reset.
        self.peak = 0

    @property
    def in_flight(self) -> int:
        """Requests in the sandbox now: being served, and queued for a slot."""
        return self.serving + len(self.queue)

    def refusal(self, capacity: int | None, latency: float) -> float | None:
        """None if a new request may enter (served or queued); else the Retry-After seconds to answer
        it with: the time the queue ahead needs to drain, at one `latency` per `capacity` requests."""
        if capacity is None or len(self.queue) < capacity:
            return None
        wait = (len(self.queue) + 1) / capacity * max(latency, 0.01)
        return math.ceil(wait * 100) / 100

    async def enter(self, capacity: int | None) -> None:
        """Take a slot, queueing first come, first served while none is free."""
        self.peak = max(self.peak, self.in_flight + 1)
        if capacity is None or (self.serving < capacity and not self.queue):
            self.serving += 1
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.queue.append(waiter)
            try:
                await waiter  # the slot is handed over with the result: `serving` already counts it
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.leave(capacity)  # handed a slot as the client went away: pass it on
                elif waiter in self.queue:
                    self.queue.remove(waiter)
                raise

    def leave(self, capacity: int | None) -> None:
        """Give a slot back; it goes to the longest waiter if the capacity allows."""
        self.serving -= 1
        self.admit(capacity)

    def admit(self, capacity: int | None) -> None:
        """Hand free slots to queued requests (after a departure, or a larger capacity)."""
        while self.queue and (capacity is None or self.serving < capacity):
            waiter = self.queue.popleft()
            if not waiter.done():
                self.serving += 1
                waiter.set_result(None)
