"""The runner: main steps as a dependency graph, then `rollback` if it failed, then `finally`.

Each step starts the moment its dependencies are done (not wave by wave). A failed step cancels
what is still running, unless it says `on_error: continue`. An interrupt (Ctrl-C) cancels running
steps and still runs `finally`. Every step task is owned by one TaskGroup.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from graphlib import TopologicalSorter
from typing import TYPE_CHECKING, Any

import structlog

from orchestrator.actions.modules import importable
from orchestrator.engine import otel
from orchestrator.engine.advisor import Advice, advise
from orchestrator.engine.collector import fewer_young_collections
from orchestrator.engine.options import RunOptions
from orchestrator.engine.results import RunResult, RunStatus, StepResult
from orchestrator.engine.state import RunState
from orchestrator.engine.step import StepRunner
from orchestrator.engine.watchdog import LoopWatchdog
from orchestrator.logs import get_logger
from orchestrator.retry import RunDeadline

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

    from orchestrator.planner import Plan, PlannedStep

log = get_logger()


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


async def execute(plan: Plan, options: RunOptions | None = None) -> RunResult:
    """Run `plan` to a RunResult. Step failures are in the result; only a cancellation of the
    caller's own task propagates (after `finally` has run). With `reads_only`, only steps that
    change nothing run; the others end `planned`, showing the request they would send. The
    options' `timeout` (else the plan's) bounds the main steps: when it passes, the run fails as if
    a step had. With `outputs="read"`, only the steps whose output a template reads keep it."""
    options = options or RunOptions()
    state = RunState(plan, options.run_id or new_run_id(), options)
    timeout = options.timeout if options.timeout is not None else plan.timeout
    folder = importable(plan.import_path) if plan.import_path is not None else contextlib.nullcontext()
    with fewer_young_collections(plan.config.gc.young_threshold), folder:
        return await _run(state, options.interrupt or asyncio.Event(), timeout)


async def _run(state: RunState, interrupt: asyncio.Event, timeout: float | None) -> RunResult:
    plan, run_id, reads_only = state.plan, state.run_id, state.reads_only
    started = time.perf_counter()
    tokens = structlog.contextvars.bind_contextvars(run_id=run_id)
    state.reporter.run_started(plan, run_id)
    log.info("run.started", playbook=plan.name, steps=len(plan.steps))
    watchdog = LoopWatchdog(state.timeline, plan.import_path) if state.timeline is not None and not reads_only else None
    status: RunStatus = "succeeded"
    cancelled_from_outside = False
    try:
        try:
            status = await _graph(plan.steps, state, interrupt, timeout)
            state.cancel_reason = None  # said of the main steps; rollback and finally start afresh
        except asyncio.CancelledError:
            # The caller's task was cancelled: finish cleanly (finally, pools), then re-raise.
            cancelled_from_outside, status = True, "interrupted"
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
        if status == "failed" and not reads_only:
            await _shielded(_sequence(plan.rollback, state))
        if plan.finally_:
            finally_failed = await _shielded(_sequence(plan.finally_, state))
            if finally_failed and status == "succeeded":
                status = "failed"
    finally:
        if watchdog is not None:
            watchdog.stop()
        await _shielded(state.aclose())
        structlog.contextvars.reset_contextvars(**tokens)
    ordered = tuple(state.results.get(s.id) or _not_reached(s) for s in plan.all_steps())
    if reads_only and status == "succeeded":
        status = "planned"
    path = str(plan.path) if plan.path else None
    left_out = tuple(s.id for s in plan.steps if s.id in plan.left_out)
    ended = time.perf_counter()
    result = RunResult(
        run_id, plan.name, status, ended - started, ordered, path, left_out, started_at=state.epoch + started,
        ended_at=state.epoch + ended, advice=_advice(state, ordered), timeline=state.timeline,
    )
    if state.timeline is not None and otel.configured():
        await otel.export_in_thread(result)
    log.info("run.finished", status=status, duration=round(result.duration_s, 4))
    state.reporter.run_finished(result)
    if cancelled_from_outside:
        raise asyncio.CancelledError
    return result


async def _shielded(work: Awaitable[Any]) -> Any:
    """Run cleanup to completion even if the caller is cancelled meanwhile."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


_TIMED_OUT = "timed out"  # put on the queue of finished steps when the run's timeout passes


async def _graph(steps: Sequence[PlannedStep], state: RunState, interrupt: asyncio.Event, timeout: float | None) -> RunStatus:
    """Start each step when its dependencies are done; stop everything at the first failure, an
    interrupt or the run's timeout.

    When the timeout passes, the results of steps that ended before it was seen count first: a run
    whose last step ended before the timer's turn came (a call that held the loop past it) succeeded,
    as it would have had that result come first. The steps running are cancelled, saying why (those
    whose task had not begun too); if none was, the steps it keeps from starting say why instead."""
    sorter: TopologicalSorter[str] = TopologicalSorter({s.id: s.needs for s in steps})
    sorter.prepare()
    by_id = {s.id: s for s in steps}
    finished: asyncio.Queue[StepResult | str | None] = asyncio.Queue()
    running: dict[str, asyncio.Task[None]] = {}
    status: RunStatus = "succeeded"
    loop = asyncio.get_running_loop()
    timer = loop.call_later(timeout, finished.put_nowait, _TIMED_OUT) if timeout is not None else None
    # What retries may still wait: a server's Retry-After past the run's end is not waited for.
    deadline = RunDeadline(time.monotonic() + timeout, timeout) if timeout is not None else None

    async def run_one(step: PlannedStep) -> None:
        try:
            result = await StepRunner(step, state, deadline).run()
        except asyncio.CancelledError:
            result = state.results.get(step.id) or _not_reached(step)
        finished.put_nowait(result)

    def step_ended(result: StepResult) -> bool:
        """Count a finished step; False if its failure stops the run."""
        nonlocal status
        running.pop(result.id, None)
        if result.status in ("failed", "cancelled") and by_id[result.id].on_error != "continue":
            status = "failed"
            state.cancel_reason = f"cancelled: step {result.id!r} {result.status}"
            return False
        sorter.done(result.id)
        return True

    def interrupted() -> None:
        nonlocal status
        status = "interrupted"
        state.cancel_reason = "cancelled: the run was interrupted"
        log.warning("run.interrupted")

    def timed_out() -> bool:
        """The timeout passed: True if it stops the run (a step is running or yet to start)."""
        nonlocal status
        while not finished.empty():  # what came before the timeout was seen counts first
            queued = finished.get_nowait()
            if queued is None:
                interrupted()
                return True
            if isinstance(queued, StepResult) and not step_ended(queued):
                return True  # that step's failure stops the run, and says so
        if not running and not sorter.is_active():
            log.info("run.timeout_raced", timeout=timeout, note="every step had ended when the timeout was seen")
            return False
        status = "failed"
        passed = f"the run's timeout of {timeout:g}s passed"
        state.cancel_reason = f"cancelled: {passed}"
        log.error("run.timed_out", timeout=timeout, running=sorted(running))
        if not running:  # between steps: the steps it keeps from starting say why
            for sid in sorter.get_ready():
                step = by_id[sid]
                state.record(StepResult(step.id, step.kind, step.executor, "cancelled", error=f"not started: {passed}"))
        return True

    async def on_interrupt() -> None:
        await interrupt.wait()
        finished.put_nowait(None)  # one queue to wait on: results, then this

    async with asyncio.TaskGroup() as group:
        waiter = group.create_task(on_interrupt())
        try:
            while sorter.is_active():
                for sid in sorter.get_ready():
                    running[sid] = group.create_task(run_one(by_id[sid]))
                if not running:
                    break
                result = await finished.get()
                if result is None:
                    interrupted()
                    break
                if isinstance(result, str):
                    if timed_out():
                        break
                    continue
                if not step_ended(result):
                    break
        finally:
            waiter.cancel()
            if timer is not None:
                timer.cancel()
            for task in running.values():
                task.cancel()  # fail fast: the other running steps are cancelled, and say so
    for sid in running:  # a step cancelled before its task began says why all the same
        if sid not in state.results:
            step = by_id[sid]
            state.record(StepResult(sid, step.kind, step.executor, "cancelled", error=state.cancel_reason or "cancelled"))
    return status


async def _sequence(steps: Sequence[PlannedStep], state: RunState) -> bool:
    """Run rollback or finally steps one after another; a failure does not stop the next. True if any failed."""
    failed = False
    for step in steps:
        result = await StepRunner(step, state).run()
        failed = failed or result.status == "failed"
    return failed


def _advice(state: RunState, results: Sequence[StepResult]) -> tuple[Advice, ...]:
    """The tag advisor's findings; none for a dry run, or when the timeline is off."""
    if state.timeline is None or state.reads_only:
        return ()
    try:
        found = advise(state.plan, state.timeline, results)
    except Exception as exc:  # advice is a hint: it never fails a run
        log.warning("advice.failed", error=f"{type(exc).__name__}: {exc}")
        return ()
    for advice in found:
        log.info("step.advice", step=advice.step, tagged=advice.tagged, suggested=advice.suggested, evidence=advice.evidence)
    return found


def _not_reached(step: PlannedStep) -> StepResult:
    if step.section == "rollback":  # the run did not fail: nothing to undo
        return StepResult(step.id, step.kind, step.executor, "skipped", section=step.section)
    return StepResult(step.id, step.kind, step.executor, "cancelled", error="not started", section=step.section)
