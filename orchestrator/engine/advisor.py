"""The tag advisor: whether each step ran where its work belongs, from what its run measured.

A step's kind says where it runs (`non-blocking` on the event loop, `blocking` on threads, `cpu` on
processes); the run's timeline says what its work did there. Each rule needs clear evidence,
and enough of it, before it speaks: advice that cries wolf teaches users to ignore it.

- A **non-blocking** step whose own code held the event loop (stalls the loop watchdog blamed on
  it) for at least `LOOP_SHARE` of the step's time, or for one stall of `LONG_STALL` or more:
  suggest `blocking`.
- A **blocking** step whose threads kept a core busy (their calls' CPU time, scaled up from the
  sampled calls to all of them, over the step's time: at most 1.0 with the GIL, whatever the number
  of threads) at least `CPU_CORES` of the step and for at least `MIN_CPU` seconds: suggest `cpu`.
- A **cpu** step whose worker processes spent less than `WAIT_SHARE` of their calls' time on CPU,
  over at least `MIN_WALL` seconds of calls, and whose calls blocked (a voluntary context switch per
  call at least, where the probe counts them): suggest `blocking`. CPU work on a machine busy with
  other programs also gets little CPU time, but it is preempted, not blocked.
- A step whose items waited for a free thread or worker process at least `QUEUED_SHARE` of their
  time, on a pool smaller than the step's concurrency (and, for processes, than the machine's
  cores: more CPU-bound processes than cores gain nothing): say which setting to raise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrator.engine.results import StepResult
    from orchestrator.engine.timeline import Timeline
    from orchestrator.planner import Plan

LOOP_SHARE = 0.2
LONG_STALL = 0.1
CPU_CORES = 0.6
MIN_CPU = 0.02
WAIT_SHARE = 0.3
MIN_WALL = 0.05
QUEUED_SHARE = 0.5
MIN_QUEUED = 0.05


@dataclass(frozen=True, slots=True)
class Advice:
    """Advice on one step: it is tagged `tagged`, its work suggests `suggested` (the same kind when
    the advice is a pool setting), and why."""

    step: str
    tagged: str
    suggested: str
    evidence: str

    def summary(self) -> dict[str, Any]:
        return {"step": self.step, "tagged": self.tagged, "suggested": self.suggested, "evidence": self.evidence}

    def line(self) -> str:
        if self.tagged == self.suggested:
            return f"advice: step {self.step!r} ({self.tagged}): {self.evidence}"
        return f"advice: step {self.step!r} is tagged {self.tagged}, its work looks {self.suggested}: {self.evidence}"


def advise(plan: Plan, timeline: Timeline, results: Sequence[StepResult]) -> tuple[Advice, ...]:
    """Advice for every step that ran, in the playbook's order."""
    out: list[Advice] = []
    stalled = {s.step for s in timeline.stalls}
    traced = timeline.items
    for result in results:
        if result.id not in stalled and result.id not in traced:
            continue  # no evidence, no advice: the common case costs two lookups
        if result.started_at is None or result.ended_at is None or result.status == "planned":
            continue
        wall = max(result.ended_at - result.started_at, 1e-9)
        step = plan.step(result.id)
        found = _advice(result, wall, timeline, step.concurrency if step.for_each is not None else 1, plan)
        if found is not None:
            out.append(found)
    return tuple(out)


def _advice(result: StepResult, wall: float, timeline: Timeline, concurrency: int, plan: Plan) -> Advice | None:
    kind, sid = result.kind, result.id
    if kind == "non-blocking" and result.executor == "asyncio":
        stalls = [s for s in timeline.stalls if s.step == sid]
        held = sum(s.duration for s in stalls)
        longest = max((s.duration for s in stalls), default=0.0)
        if stalls and (held >= LOOP_SHARE * wall or longest >= LONG_STALL):
            where = stalls[max(range(len(stalls)), key=lambda i: stalls[i].duration)].where
            return Advice(sid, kind, "blocking", (
                f"held the event loop {len(stalls)} time(s), {_ms(held)} in all ({held / wall:.0%} of the step), "
                f"up to {_ms(longest)} at once, at {where}: nothing else ran meanwhile"
            ))
        return None
    spans = [s for s in timeline.items.get(sid, ()) if s.cpu is not None]
    if not spans:
        return None
    calls = result.items if result.items is not None else 1
    cpu = sum(s.cpu or 0.0 for s in spans)
    busy = sum(s.ended - s.started for s in spans)
    queued = sum(s.queued for s in spans)
    if kind == "blocking" and result.executor == "threads":
        cores = cpu * calls / len(spans) / wall
        if cores >= CPU_CORES and cpu >= MIN_CPU:
            return Advice(sid, kind, "cpu", (
                f"its threads kept a core {min(cores, 1.0):.0%} busy ({_ms(cpu)} of CPU in {len(spans)} sampled "
                f"call(s), {cpu / max(busy, 1e-9):.0%} of their time): one thread at a time runs Python (the GIL), "
                "so threads add no speed to CPU work; worker processes do"
            ))
    if kind == "cpu" and result.executor in ("processes", "dask") and busy >= MIN_WALL and cpu < WAIT_SHARE * busy:
        counted = [s.waits for s in spans if s.waits is not None]
        if not counted or sum(counted) >= len(counted):
            return Advice(sid, kind, "blocking", (
                f"its worker processes spent {cpu / busy:.0%} of their calls' time on CPU ({_ms(cpu)} of "
                f"{_ms(busy)} in {len(spans)} sampled call(s)) and the rest waiting: threads wait as well, "
                "without a process per call"
            ))
    return _pool_advice(result, spans, queued, busy, concurrency, plan)


def _pool_advice(
    result: StepResult, spans: Sequence[Any], queued: float, busy: float, concurrency: int, plan: Plan,
) -> Advice | None:
    kind = result.kind
    if result.executor not in ("threads", "processes") or concurrency <= 1:
        return None  # one call at a time never outnumbers a pool: no pool setting would help it
    if queued < MIN_QUEUED or queued < QUEUED_SHARE * (queued + busy):
        return None
    spec = plan.config.executor_for(kind)  # type: ignore[arg-type]
    workers = spec.worker_count()
    cores = os.cpu_count() or 1
    if workers >= concurrency or (result.executor == "processes" and workers >= cores):
        return None
    room = concurrency if result.executor == "threads" else min(concurrency, cores)
    pool = "a free thread" if result.executor == "threads" else "a free worker process"
    return Advice(result.id, kind, kind, (
        f"its items waited for {pool} {queued / (queued + busy):.0%} of their time ({len(spans)} sampled): the pool "
        f"has {workers} and the step runs up to {concurrency} at once; raise `executors.{kind}.workers` toward {room}"
    ))


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"
