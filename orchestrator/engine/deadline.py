"""A step's `timeout` on each attempt: the attempt's task is cancelled at its deadline, and the
cancellation comes out as StepTimeout.

The protocol is ``asyncio.timeout()``'s: cancel the task, then count the cancellation as ours only if
no one else asked for one meanwhile. The mechanism is cheaper. ``asyncio.timeout()`` arms a timer
per use (5.4 µs per attempt on this machine, most of a fan-out item's cost). A step's attempts all
have the same timeout, so their deadlines come in the order they start: one timer, set for the
oldest attempt still running, serves them all, and an attempt costs a dict entry (0.4 µs).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from orchestrator.errors import StepTimeout

if TYPE_CHECKING:
    from types import TracebackType


class Deadlines:
    """The deadlines of one step's running attempts. ``with deadlines.attempt():`` bounds a block."""

    __slots__ = ("_loop", "_running", "_timer", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        # Insertion order is deadline order: the first entry is always the next to expire.
        self._running: dict[Attempt, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def attempt(self) -> Attempt:
        return Attempt(self)

    def _start(self, attempt: Attempt) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        attempt.until = loop.time() + self.seconds
        self._running[attempt] = None
        if self._timer is None:
            self._timer = loop.call_at(attempt.until, self._expire)

    def _expire(self) -> None:
        self._timer = None
        assert self._loop is not None
        now = self._loop.time()
        for attempt in self._running:
            if attempt.until > now:
                self._timer = self._loop.call_at(attempt.until, self._expire)
                return
            if not attempt.expired:
                attempt.expired = True
                attempt.task.cancel()


class Attempt:
    """One bounded block: registered on entry, removed on exit."""

    __slots__ = ("cancelling", "deadlines", "expired", "task", "until")

    def __init__(self, deadlines: Deadlines) -> None:
        self.deadlines = deadlines
        self.expired = False
        self.until = 0.0

    def __enter__(self) -> Attempt:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline must be used inside a task")
        self.task = task
        self.cancelling = task.cancelling()
        self.deadlines._start(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        del self.deadlines._running[self]
        # Ours only if no other cancellation was requested since entry (a Ctrl-C, a failing sibling).
        if self.expired and self.task.uncancel() <= self.cancelling and kind is asyncio.CancelledError:
            raise StepTimeout(self.deadlines.seconds) from None
