"""`concurrency: auto`: a limit that finds how many calls the target serves well, from what it answers.

The algorithm is a latency gradient with multiplicative decrease on overload, after Netflix's
concurrency-limits (``GradientLimit`` / ``Gradient2Limit``, which apply TCP Vegas's delay-based idea
to service calls) and TCP's own congestion control (slow start and halving on loss, RFC 5681):

* **Classify every attempt** (`Watched`): a success is a latency sample; a retryable failure (a
  status in `retry_on_status` such as 429 or 503, a connection error) or a timeout is a *drop*; any
  other failure (a 404, a template error) says nothing about load and is ignored.
* **Windows of samples.** The limit is updated once per window: about one limit's worth of samples,
  or at least 4 samples and 1 s. A window's latency is the mean of its samples, and only attempts
  that started after the window opened count, so that each decision measures the limit the last
  one set (without this, growth outruns its own latency signal by one round trip and overshoots).
* **The floor** is the lowest window latency of the last 15 to 30 s: the target's latency without
  a queue. It is forgotten after that so that a target that became slower for good is measured
  anew (a floor kept forever would hold the limit low after such a change).
* **Growth.** Until the first sign of a queue (a drop, or a window slower than the floor by more
  than the tolerance) the limit doubles each window (slow start). After that, with
  ``gradient = floor * 1.25 / latency`` (at least 0.5): while the latency stays within 25% of its
  floor (the tolerance Envoy's adaptive concurrency filter adds to its minimum RTT) the limit
  grows by its square root each window; past that it moves half way to ``limit * gradient + 1``,
  shrinking in proportion to the queue. A target that serves N at once and queues the rest
  answers in ``floor * limit / N``, so the limit settles around 1.25 N: every slot of the target
  busy, a short queue, and well short of twice N.
* **Drops halve the limit**, once per round: a drop of an attempt that started before the last
  decrease says nothing new (the TCP NewReno rule), so a burst of 429s costs one halving, not one
  per 429.
* **No growth while the limit is not used**: a window in which fewer than half the limit's slots
  were ever held does not raise it (the "app-limited" rule of Gradient2), so the tail of a fan-out
  or a slow producer does not inflate it.

What went wrong for users of those libraries, and what is done about it here: Gradient2's
long-term average latency follows a standing queue upwards, so under modest overload its limit
crept up without end (concurrency-limits #134): here the floor is a minimum, not an average.
A minimum kept forever leaves the limit low once the target is slower for good (GradientLimit's
probe reset the floor for that, and dropped throughput each time): here it expires after 15 to
30 s. AIMD's halving on every drop made its limit swing between the minimum and twice the
optimum (camunda #8298): here a burst of drops halves once. A 429's `Retry-After` is honoured by
the limit as a whole (`Limit.hold_off`), not only by the item that got it.

The decision core (`Gradient`) does no I/O and takes the time as an argument, so tests drive it
with made-up latencies; it writes the limit into the `Capacity` the attempts take.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING, Any

from orchestrator.errors import StepError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from orchestrator.engine.limits import Limit
    from orchestrator.executors.base import Executor, Invocation
    from orchestrator.executors.capacity import Capacity

#: The limit a new adaptive limit starts at (within its bounds), before slow start doubles it.
INITIAL = 8
#: A window's latency may exceed the floor by this factor before the limit stops growing.
TOLERANCE = 1.25
#: A drop multiplies the limit by this (TCP Reno's halving).
BACKOFF = 0.5
#: A decrease from latency moves the limit this share of the way to its new value.
SMOOTHING = 0.5
#: A window closes after a limit's worth of samples, or after this long with at least MIN_SAMPLES.
WINDOW_SECONDS = 1.0
MIN_SAMPLES = 4
#: The floor is the lowest window latency of the current and the previous period of this length.
FLOOR_PERIOD = 15.0
#: How many (time, limit) changes a limit remembers (the latest ones), for showing its course.
HISTORY = 4096


class Gradient:
    """The decision core: samples and drops in, a limit out (written to `capacity.total`)."""

    __slots__ = (
        "_busiest",
        "_count",
        "_decreased_at",
        "_floor_before",
        "_floor_now",
        "_floor_until",
        "_opened",
        "_sum",
        "capacity",
        "history",
        "limit",
        "maximum",
        "minimum",
        "slow_start",
    )

    def __init__(self, capacity: Capacity, minimum: int, maximum: int, now: float, initial: int = INITIAL) -> None:
        self.capacity = capacity
        self.minimum = minimum
        self.maximum = maximum
        self.limit = float(max(minimum, min(maximum, initial)))
        self._count, self._sum, self._busiest, self._opened = 0, 0.0, 0, now
        self.slow_start = True
        self._floor_now = self._floor_before = math.inf
        self._floor_until = now + FLOOR_PERIOD
        self._decreased_at = -math.inf
        self.history: list[tuple[float, int]] = [(now, int(self.limit))]
        self._open(now)
        capacity.total = int(self.limit)

    @property
    def floor(self) -> float:
        """The lowest window latency remembered (seconds); infinite before the first window."""
        return min(self._floor_now, self._floor_before)

    def sample(self, rtt: float, now: float) -> None:
        """An attempt succeeded after `rtt` seconds. Only attempts started since the window opened
        count: they ran under the limit now in force, so each decision sees the effect of the last."""
        if now - rtt < self._opened:
            return
        self._count += 1
        self._sum += rtt
        held = self.capacity.held
        if held > self._busiest:
            self._busiest = held
        if self._count >= self.limit or (self._count >= MIN_SAMPLES and now - self._opened >= WINDOW_SECONDS):
            self._close(now)

    def drop(self, started: float, now: float) -> None:
        """An attempt that started at `started` met overload (429, 503, a timeout): halve the limit,
        unless it started before the last decrease (then that decrease already answered it)."""
        if started < self._decreased_at:
            return
        self.slow_start = False
        self._decreased_at = now
        self._set(self.limit * BACKOFF, now)
        self._open(now)

    def _open(self, now: float) -> None:
        self._count, self._sum, self._busiest, self._opened = 0, 0.0, self.capacity.held, now

    def _close(self, now: float) -> None:
        rtt = self._sum / self._count
        busiest, limit = self._busiest, self.limit
        self._open(now)
        if now >= self._floor_until:  # a new period: the oldest one's minimum is forgotten
            self._floor_before, self._floor_now, self._floor_until = self._floor_now, math.inf, now + FLOOR_PERIOD
        if rtt < self._floor_now:
            self._floor_now = rtt
        if busiest < limit / 2:
            return  # the limit is not what holds the calls back: nothing learnt about it
        gradient = max(0.5, min(1.0, self.floor * TOLERANCE / rtt))
        if gradient >= 1.0:
            self._set(limit * 2 if self.slow_start else limit + math.sqrt(limit), now)
            return
        self.slow_start = False
        target = limit * gradient + 1
        self._set(limit + (target - limit) * SMOOTHING if target < limit else target, now)

    def _set(self, value: float, now: float) -> None:
        self.limit = max(float(self.minimum), min(float(self.maximum), value))
        total = int(self.limit)
        if total != self.capacity.total:
            self.capacity.total = total
            self.history.append((now, total))
            if len(self.history) > HISTORY:
                del self.history[: HISTORY // 2]


class Watched:
    """A step's executor with each call's latency and outcome told to the step's adaptive limits.

    Only steps that take an adaptive limit run through it: others call their executor directly, so
    a fixed concurrency costs nothing for this. It is not the executor's owner: closing it closes
    nothing."""

    __slots__ = ("executor", "limits", "name", "timeout")

    def __init__(self, executor: Executor, limits: Sequence[Limit], timeout: float | None) -> None:
        self.executor = executor
        self.name = executor.name
        self.limits = tuple(limits)
        self.timeout = timeout

    async def run(self, call: Invocation, log_context: Mapping[str, Any]) -> Any:
        clock = time.monotonic
        started = clock()
        try:
            value = await self.executor.run(call, log_context)
        except asyncio.CancelledError:
            # The step's timeout cancels the attempt from outside: a call cancelled after running
            # that long was (all but certainly) cut by it, and a timeout is an overload signal.
            if self.timeout is not None and clock() - started >= self.timeout:
                self._dropped(started, clock())
            raise
        except StepError as exc:
            if exc.retryable:  # a status in retry_on_status, a connection failure, a timeout
                self._dropped(started, clock())
            raise
        now = clock()
        for limit in self.limits:
            limit.sampled(now - started, now)
        return value

    def _dropped(self, started: float, now: float) -> None:
        for limit in self.limits:
            limit.dropped(started, now)

    async def aclose(self) -> None:
        """Nothing to close: the run closes the executor itself."""


def settled(limits: Sequence[Limit], *, own: bool) -> dict[str, Any]:
    """The fields of a StepResult that show what its adaptive limits settled on: `concurrency` for
    the step's own (`own`: the first of `limits`), `limit_concurrency` for the named ones it took."""
    if not any(limit.adaptive is not None for limit in limits):
        return {}
    out: dict[str, Any] = {}
    if own:
        out["concurrency"] = limits[0].concurrency
        limits = limits[1:]
    named = tuple((limit.name, limit.concurrency) for limit in limits if limit.adaptive is not None)
    if named:
        out["limit_concurrency"] = named
    return out
