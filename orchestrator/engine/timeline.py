"""The timeline of one run, recorded as it goes: where and when each step and (sampled) item ran,
each retry's attempt and wait, each wait for a named limit, and each stall of the event loop.

What it costs, and so what is kept. A `for_each` item's own cost in the engine is about a
microsecond on the event loop (`../shared/MEASURED.md`); timing it, finding its lane and keeping a
record costs about as much again (a call off the loop, wrapped in a `Probe`, some 30 µs in a worker
process), so items are sampled, never all timed:

- the first `HEAD` items of every step are traced (the first waves, what the advisor needs);
- after that, one every `SAMPLE` seconds of the step, whatever its pace: the next item taken after
  a look at the clock (which the fan-out makes anyway, about every 2 ms, see `fanout._LOOK`) at
  least `SAMPLE` after the last traced one;
- a step keeps at most `MAX_ITEMS` item spans: when it has that many, every other one is dropped
  (evenly over the step) and from then on one traced item in two is kept (then one in four, ...).

The call of a step without `for_each` that runs off the loop is traced likewise: the first `HEAD`
of a run (every step of most playbooks), then the first to start after each `SAMPLE` seconds,
so a generated playbook of thousands of small steps pays for a few of them.

An item that is not traced costs one integer comparison. A traced item's call is wrapped in a
`Probe` when it runs off the event loop, so that it says which thread, worker process or Dask worker
ran it, when, and with how much CPU time. Waits (retry backoff, Retry-After, limits) and retried
attempts are the slow path already and are always recorded.

Times are `time.perf_counter()` seconds; `epoch` turns them into Unix time.
"""

from __future__ import annotations

import inspect
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.executors.probe import Measured, Probe

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.engine.step import StepRunner
    from orchestrator.executors.base import Invocation

#: Every item of the first HEAD of a step is traced.
HEAD = 100
#: A step keeps at most this many item spans (see the module docstring).
MAX_ITEMS = 10_000
#: Past the first HEAD items of a step (single-call steps of a run), one is traced per this many seconds.
SAMPLE = 0.02
#: `ORCHESTRATOR_TIMELINE=off` records no timeline and gives no advice (for measuring their cost).
SWITCH = "ORCHESTRATOR_TIMELINE"
LOOP = "loop"

_clock = time.perf_counter


def enabled() -> bool:
    return os.environ.get(SWITCH, "").strip().lower() not in ("off", "0", "false", "no")


@dataclass(slots=True)
class ItemSpan:
    """One traced item: its lane, when it ran there, whether it succeeded, the CPU time of its call
    (None on the event loop), how long it waited between dispatch and starting in its lane, and how
    many times its call blocked (in a worker process; else None)."""

    index: int | None
    lane: str
    started: float
    ended: float
    ok: bool
    cpu: float | None = None
    queued: float = 0.0
    waits: int | None = None


@dataclass(frozen=True, slots=True)
class Mark:
    """A wait (`what`: "backoff", "Retry-After", "limit NAME") or a retried attempt ("attempt N")."""

    step: str
    index: int | None
    what: str
    started: float
    ended: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Stall:
    """The event loop ran nothing else for `duration` seconds from `started`. `step` is the step
    whose task held it, when a sample of the loop thread's stack showed that step's own code;
    `where` is that code's frame (``file:line in function``)."""

    started: float
    duration: float
    step: str | None = None
    where: str | None = None


class ItemTrace:
    """One traced item on its way through `StepRunner.item`: when its call was dispatched, and the
    probe that wraps the call when it runs off the event loop."""

    __slots__ = ("dispatched", "probe", "wraps")

    def __init__(self, wraps: bool) -> None:
        self.wraps = wraps
        self.probe: Probe | None = None
        self.dispatched = 0.0

    def dispatch(self, call: Invocation) -> None:
        self.dispatched = _clock()
        if self.wraps and not inspect.iscoroutinefunction(call.fn):
            call.fn = self.probe = Probe(call.fn)


class Timeline:
    """What one run records as it goes (see the module docstring). Written on the event loop only,
    except `stalls`, which the loop watchdog appends to from its thread."""

    def __init__(self) -> None:
        self.epoch = time.time() - _clock()
        self.pid = os.getpid()
        self.loop_thread = threading.get_ident()
        self.items: dict[str, list[ItemSpan]] = {}
        self.marks: list[Mark] = []
        self.stalls: list[Stall] = []
        self._keep_every: dict[str, int] = {}
        self._traced: dict[str, int] = {}
        self._steps_seen = 0
        self._step_traced_at = 0.0

    def wall(self, t: float) -> float:
        """A `perf_counter` time as Unix time."""
        return self.epoch + t

    def item(self, step: str, span: ItemSpan) -> None:
        every = self._keep_every.get(step, 1)
        if every > 1:
            n = self._traced[step] = self._traced.get(step, 0) + 1
            if n % every:
                return
        spans = self.items.setdefault(step, [])
        spans.append(span)
        if len(spans) >= MAX_ITEMS:
            del spans[1::2]
            self._keep_every[step] = every * 2

    def trace_step(self) -> bool:
        """Whether the call of a single-call step starting now is traced (see the module docstring)."""
        self._steps_seen += 1
        if self._steps_seen <= HEAD:
            return True
        now = _clock()
        if now - self._step_traced_at < SAMPLE:
            return False
        self._step_traced_at = now
        return True

    def mark(self, step: str, index: int | None, what: str, started: float, ended: float, detail: str = "") -> None:
        self.marks.append(Mark(step, index, what, started, ended, detail))

    def sampled(self, step: str) -> int:
        """How many of the step's items a kept span stands for (1: every traced item is kept)."""
        return self._keep_every.get(step, 1)


async def traced_item(runner: StepRunner, scope: Mapping[str, Any], index: int | None) -> Any:
    """`runner.item(scope, index)`, traced: its span is recorded whether it succeeds or not."""
    timeline = runner.state.timeline
    assert timeline is not None
    executor = runner.executor.name
    trace = ItemTrace(executor != "asyncio")
    started = _clock()
    value: Any = None
    ok = False
    try:
        value = await runner.item(scope, index, trace)
        ok = True
    finally:
        ended = _clock()
        probe = trace.probe
        measured: Measured | None = value if ok and probe is not None else None  # what a probed call returns
        if measured is not None:
            value, lane, began, finished, cpu, waits = measured
            span = ItemSpan(index, lane, began, finished, ok, cpu, max(0.0, began - trace.dispatched), waits)
        elif probe is not None and probe.lane is not None:  # raised in a pool thread
            span = ItemSpan(index, probe.lane, probe.started, probe.ended, ok, probe.cpu,
                            max(0.0, probe.started - trace.dispatched))
        else:
            span = ItemSpan(index, LOOP if executor == "asyncio" else executor, started, ended, ok)
        timeline.item(runner.step.id, span)
    return value
