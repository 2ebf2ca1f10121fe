"""Running one step: `when`, then its item or items, each attempt rendered, limited, timed and retried."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from orchestrator.actions.base import StepContext
from orchestrator.engine.deadline import Deadlines
from orchestrator.engine.fanout import ItemsFailed, fan_out
from orchestrator.engine.results import StepResult
from orchestrator.errors import TemplateError, describe
from orchestrator.logs import get_logger
from orchestrator.templates import Template, Unknown, contains_unknown

if TYPE_CHECKING:
    from orchestrator.engine.limits import Limit
    from orchestrator.engine.state import RunState
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
        self.deadlines = Deadlines(step.timeout) if step.timeout is not None else None
        self.keep = state.keeps_output(step.id)
        self.attempts = 0
        self.retries = 0
        #: Of a cancelled fan-out: its outputs so far, its number of items, items done, items failed.
        self.progress: tuple[list[Any] | None, int | None, int, int] | None = None
        # One attempt, no limit, no timeout, no log context to ship: each item is one plain await.
        self.direct = step.retry.attempts == 1 and not self.limits and step.timeout is None and not step.ships_log_context
        # In a `--dry-run=reads` run only steps that change nothing are run; the others are shown.
        self.plan_only = state.reads_only and not step.read_only

    async def run(self) -> StepResult:
        step, state = self.step, self.state
        _bind(step=step.id, kind=step.kind, executor=self.executor.name)
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
                output = await self.item(scope, None)
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
        result = StepResult(
            id=step.id, kind=step.kind, executor=self.executor.name, status=status,  # type: ignore[arg-type]
            attempts=self.attempts, duration_s=time.perf_counter() - started, error=error, output=output,
            section=step.section, items=items, items_failed=failed_items, retries=self.retries, planned=planned,
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

    def item(self, scope: Mapping[str, Any], index: int | None) -> Awaitable[Any]:
        """One item: render its parameters (a template error raises here), then the awaitable that
        attempts it under the retry policy."""
        step, state = self.step, self.state
        params = step.params.render(scope)
        with_ = step.with_.render(scope) if step.with_ is not None else None
        if state.reads_only and (contains_unknown(params) or contains_unknown(with_)):
            raise _NotKnowable
        if self.direct:  # nothing to wrap the call in: the executor's own awaitable is the item
            self.attempts = 1
            ctx = StepContext(state.run_id, step.id, index, 1, state.resources, state.env, step.retry.retry_on_status, step.raw_params)
            return self.executor.run(step.action.invocation(params, with_, ctx), _NO_CONTEXT)
        return self.attempted(params, with_, index)

    async def attempted(self, params: Any, with_: Any, index: int | None) -> Any:
        """The item under the retry policy. The first attempt is awaited here, so an item that
        succeeds at once builds nothing for the retries it did not need."""
        try:
            return await self.attempt(params, with_, index, 1)
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

        try:
            value, _ = await step.retry.after(
                first, functools.partial(self.attempt, params, with_, index), state.sleep, on_retry, self.deadline
            )
        finally:
            # `attempt` is bound in the worker's context, which its next item shares: leave none behind.
            _unbind("attempt")
        return value

    async def attempt(self, params: Any, with_: Any, index: int | None, n: int) -> Any:
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
        try:
            for limit in self.limits:  # taken outside the timeout: waiting for capacity is not the attempt's time
                if not limit.take():
                    await limit.acquire()
                taken += 1
            if self.deadlines is None:
                return await self.executor.run(call, log_context)
            with self.deadlines.attempt():
                return await self.executor.run(call, log_context)
        finally:
            for limit in reversed(self.limits[:taken]):
                limit.release()
