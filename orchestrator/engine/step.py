"""Running one step: `when`, then its item or items, each attempt rendered, limited, timed and retried."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from orchestrator.actions.base import StepContext
from orchestrator.engine.adaptive import Watched, settled
from orchestrator.engine.deadline import Deadlines
from orchestrator.engine.fanout import ItemsFailed, fan_out
from orchestrator.engine.limits import Limit
from orchestrator.engine.results import StepResult
from orchestrator.engine.timeline import traced_item
from orchestrator.errors import StepError, TemplateError, describe
from orchestrator.logs import get_logger
from orchestrator.templates import Template, Unknown, contains_unknown

if TYPE_CHECKING:
    from orchestrator.engine.journal import RecordedStep
    from orchestrator.engine.state import RunState
    from orchestrator.engine.timeline import ItemTrace
    from orchestrator.planner import PlannedStep
    from orchestrator.retry import RunDeadline

log = get_logger()

_bind = structlog.contextvars.bind_contextvars
_unbind = structlog.contextvars.unbind_contextvars
_context = structlog.contextvars.get_contextvars
_NO_CONTEXT: Mapping[str, Any] = {}


class _NotKnowable(Exception):
    """A read-only step of a dry run whose request depends on a step the dry run did not run."""


def mask_secrets(value: Any) -> Any:
    """A copy of `value` with credential-like keys and URL userinfo masked, for showing a plan."""
    from orchestrator.actions.redact import MASK, is_sensitive, redact_url

    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and is_sensitive(k) else mask_secrets(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    if isinstance(value, Unknown):
        return str(value)
    return value


class StepRunner:
    """Runs one planned step to a StepResult. Never raises, except CancelledError."""

    def __init__(self, step: PlannedStep, state: RunState, deadline: RunDeadline | None = None) -> None:
        self.step = step
        self.state = state
        #: The run's timeout, for a main step: retries wait for no Retry-After past it.
        self.deadline = deadline
        self.executor = state.executors[step.kind]
        self.limits: list[Limit] = [state.limits[name] for name in step.limits]  # in the plan's global order
        if step.auto_concurrency is not None:  # the step's own adaptive limit, taken first: no one else waits on it
            self.limits.insert(0, Limit.auto(step.id, *step.auto_concurrency))
        if watched := [limit for limit in self.limits if limit.adaptive is not None]:
            self.executor = Watched(self.executor, watched, step.timeout)  # calls report to them (engine/adaptive.py)
        self.deadlines = Deadlines(step.timeout) if step.timeout is not None else None
        self.keep = state.keeps_output(step.id)
        self.attempts = 0
        self.retries = 0
        #: Of a cancelled fan-out: its outputs so far, its number of items, items done, items failed.
        self.progress: tuple[list[Any] | None, int | None, int, int] | None = None
        #: Of a resumed run's fan-out: the items that had succeeded before, not run again.
        self.items_resumed = 0
        # One attempt, no limit, no timeout, no log context to ship: each item is one plain await.
        self.direct = step.retry.attempts == 1 and not self.limits and step.timeout is None and not step.ships_log_context
        # In a `--dry-run=reads` run only steps that change nothing are run; the others are shown.
        self.plan_only = state.reads_only and not step.read_only

    async def run(self) -> StepResult:
        step, state = self.step, self.state
        _bind(step=step.id, kind=step.kind, executor=self.executor.name)
        recorded = state.resume.steps.get(step.id) if step.section == "steps" else None
        if recorded is not None:
            return self.restore(recorded)
        if step.id in state.plan.left_out:  # a partial run (--only, --skip) leaves it out
            return self.finish("skipped", time.perf_counter(), None, None)
        started = time.perf_counter()
        scope = state.scope()
        output: Any = None
        items: int | None = None
        failed_items = 0
        try:
            if step.when is not None and not self.condition(step.when, scope):
                return self.finish("skipped", started, None, None)
            if self.plan_only:
                return self.finish("planned", started, None, None, planned=self.would_send(scope))
            state.reporter.step_started(step, None)
            log.info("step.started")
            if step.for_each is None:
                # A call on the loop is traced by the step's own span; one off it says where it ran.
                timeline = state.timeline
                traced = timeline is not None and self.executor.name != "asyncio" and timeline.trace_step()
                output = await (traced_item(self, scope, None) if traced else self.item(scope, None))
                if not self.keep:
                    output = None
            else:
                output, items, failed_items = await self.fan_out(scope)
        except asyncio.CancelledError:
            reason = state.cancel_reason or "cancelled"
            if self.progress is not None:  # a fan-out: say how far it got, keep what it made
                output, total, done, failed_items = self.progress
                items = done + failed_items
                reason += f"; {done:,} of {total:,} items done" if total is not None else f"; {done:,} items done"
                if failed_items:
                    reason += f", {failed_items:,} failed"
            self.finish("cancelled", started, reason, output, items, failed_items)
            raise
        except _NotKnowable:
            return self.finish("planned", started, None, None, planned=self.would_send(scope))
        except TemplateError as exc:
            if not state.reads_only:
                return self.finish("failed", started, describe(exc), output, items, failed_items)
            # in a dry run, a template usually fails on the output of a step that did not run
            return self.finish("planned", started, None, None, planned=f"not rendered: {exc}")
        except ItemsFailed as exc:
            return self.finish("failed", started, str(exc), exc.outputs, exc.total, exc.failed)
        except Exception as exc:
            return self.finish("failed", started, describe(exc), output, items, failed_items)
        return self.finish("succeeded", started, None, output, items, failed_items)

    def restore(self, recorded: RecordedStep) -> StepResult:
        """The result of a step an earlier attempt of the run completed: not run again."""
        step = self.step
        result = StepResult(
            id=step.id, kind=step.kind, executor=self.executor.name, status="succeeded", attempts=recorded.attempts,
            duration_s=recorded.duration_s, output=recorded.output if self.keep else None, section=step.section,
            items=recorded.items, retries=recorded.retries, resumed=True,
        )
        self.state.record(result)
        log.info("step.resumed", note="succeeded in an earlier attempt of the run; not run again")
        self.state.reporter.step_finished(step, result)
        return result

    def condition(self, when: Template | bool, scope: Mapping[str, Any]) -> bool:
        return bool(when.render(scope) if isinstance(when, Template) else when)

    def would_send(self, scope: Mapping[str, Any]) -> Any:
        """The request(s) this step would send, rendered as far as a dry run knows, secrets masked."""
        step = self.step
        try:
            if step.for_each is None:
                return mask_secrets(self.rendered(scope))
            source = step.for_each.render(scope)
            if isinstance(source, Unknown):
                return f"one request per item of {source}"
            shown = []
            for index, item in enumerate(source):
                if index == 20:
                    shown.append("...")
                    break
                shown.append(mask_secrets(self.rendered({**scope, "item": item, "index": index})))
            return shown
        except TemplateError as exc:
            return f"not rendered: {exc}"

    def rendered(self, scope: Mapping[str, Any]) -> Any:
        params = self.step.params.render(scope)
        if self.step.with_ is None:
            return params
        return {"call": params, "with": self.step.with_.render(scope)}

    def finish(
        self, status: str, started: float, error: str | None, output: Any, items: int | None = None,
        failed_items: int = 0, planned: Any = None,
    ) -> StepResult:
        step = self.step
        ended = time.perf_counter()
        ran = status not in ("skipped", "planned")  # a skipped or only planned step never started
        epoch = self.state.epoch
        result = StepResult(
            id=step.id, kind=step.kind, executor=self.executor.name, status=status,  # type: ignore[arg-type]
            attempts=self.attempts, duration_s=ended - started, error=error, output=output,
            section=step.section, items=items, items_failed=failed_items, retries=self.retries, planned=planned,
            items_resumed=self.items_resumed, started_at=epoch + started if ran else None,
            ended_at=epoch + ended if ran else None, **settled(self.limits, own=step.auto_concurrency is not None),
        )
        self.state.record(result)
        if status == "failed":
            log.error("step.failed", error=error, duration=round(result.duration_s, 4), attempts=self.attempts)
        else:
            log.info("step.finished", status=status, duration=round(result.duration_s, 4), attempts=self.attempts)
        self.state.reporter.step_finished(step, result)
        return result

    async def fan_out(self, scope: Mapping[str, Any]) -> tuple[list[Any] | None, int, int]:
        """Render and check the step's `for_each`, then run its items (see `fanout.fan_out`)."""
        step = self.step
        assert step.for_each is not None
        source = step.for_each.render(scope)
        if isinstance(source, Unknown):
            raise _NotKnowable
        if isinstance(source, str | bytes | Mapping) or not isinstance(source, Iterable):
            raise TemplateError(f"{step.where}.for_each: expected a list or other sequence, got {type(source).__name__}")
        return await fan_out(self, scope, source)

    def item(self, scope: Mapping[str, Any], index: int | None, trace: ItemTrace | None = None) -> Awaitable[Any]:
        """One item: render its parameters (a template error raises here), then the awaitable that
        attempts it under the retry policy. A `trace` (a sampled item) sees each attempt's call."""
        step, state = self.step, self.state
        params = step.params.render(scope)
        with_ = step.with_.render(scope) if step.with_ is not None else None
        if state.reads_only and (contains_unknown(params) or contains_unknown(with_)):
            raise _NotKnowable
        if self.direct:  # nothing to wrap the call in: the executor's own awaitable is the item
            self.attempts = 1
            ctx = StepContext(state.run_id, step.id, index, 1, state.resources, state.env, step.retry.retry_on_status, step.raw_params)
            call = step.action.invocation(params, with_, ctx)
            if trace is not None:
                trace.dispatch(call)
            return self.executor.run(call, _NO_CONTEXT)
        return self.attempted(params, with_, index, trace)

    async def attempted(self, params: Any, with_: Any, index: int | None, trace: ItemTrace | None = None) -> Any:
        """The item under the retry policy. The first attempt is awaited here, so an item that
        succeeds at once builds nothing for the retries it did not need."""
        try:
            return await self.attempt(params, with_, index, 1, trace)
        except BaseException as exc:
            if not self.step.retry.retries(exc):
                raise
            first = exc
        step, state = self.step, self.state

        def on_retry(attempt_no: int, wait: float, exc: BaseException) -> None:
            error = describe(exc)
            # An item's `index` is in the worker's log context already; a step without for_each has none.
            log.warning("step.retry", attempt=attempt_no, wait=round(wait, 3), error=error)
            state.reporter.step_retrying(step, index, attempt_no, wait, error)
            if state.timeline is not None:
                now, asked = time.perf_counter(), getattr(exc, "retry_after", None)
                what = "Retry-After" if asked and wait <= float(asked) + 1e-6 else "backoff"
                state.timeline.mark(step.id, index, what, now, now + wait, f"after attempt {attempt_no}: {error}")

        try:
            value, _ = await step.retry.after(
                first, functools.partial(self.attempt, params, with_, index, trace=trace), state.sleep, on_retry, self.deadline
            )
        finally:
            # `attempt` is bound in the worker's context, which its next item shares: leave none behind.
            _unbind("attempt")
        return value

    async def attempt(self, params: Any, with_: Any, index: int | None, n: int, trace: ItemTrace | None = None) -> Any:
        """Attempt `n` of one item: its limits taken, then the call, bounded by the step's timeout."""
        step, state = self.step, self.state
        self.attempts = max(self.attempts, n)
        if n > 1:
            self.retries += 1
            _bind(attempt=n)
        ctx = StepContext(state.run_id, step.id, index, n, state.resources, state.env, step.retry.retry_on_status, step.raw_params)
        call = step.action.invocation(params, with_, ctx)
        log_context = _context() if step.ships_log_context else _NO_CONTEXT
        taken = 0
        timeline = state.timeline
        began = time.perf_counter() if n > 1 and timeline is not None else 0.0
        try:
            for limit in self.limits:  # taken outside the timeout: waiting for capacity is not the attempt's time
                if not limit.take():
                    waited = time.perf_counter()
                    await limit.acquire()
                    if timeline is not None:
                        timeline.mark(step.id, index, f"limit {limit.name}", waited, time.perf_counter())
                taken += 1
            if trace is not None:
                trace.dispatch(call)
            if self.deadlines is None:
                return await self.executor.run(call, log_context)
            with self.deadlines.attempt():
                return await self.executor.run(call, log_context)
        except StepError as exc:
            if exc.retry_after and self.limits:  # the server asked for a pause: nothing under these limits starts in it
                spec = step.retry.spec
                for limit in self.limits:
                    limit.hold_off(min(exc.retry_after, max(spec.max_retry_after, spec.max_delay)))
            raise
        finally:
            for limit in reversed(self.limits[:taken]):
                limit.release()
            if began:
                timeline.mark(step.id, index, f"attempt {n}", began, time.perf_counter())  # type: ignore[union-attr]
