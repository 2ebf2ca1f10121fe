"""The small actions: `sleep`, `log`, `assert` and `set`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from orchestrator.actions.base import Action, PlanContext, Problem, StepContext
from orchestrator.errors import ActionError, AssertionFailed
from orchestrator.executors.base import Invocation
from orchestrator.logs import get_logger
from orchestrator.model.values import parse_duration
from orchestrator.templates import is_template

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class Sleep(Action):
    """Wait for a duration (`250ms`, `2s`, `1m` or seconds)."""

    name = "sleep"
    params_type: ClassVar[Any] = "orchestrator.actions.params:SleepDuration"

    def check(self, params: Any, ctx: PlanContext) -> Sequence[Problem]:
        if isinstance(params, str) and not is_template(params):
            try:
                parse_duration(params)
            except ValueError as exc:
                return [Problem(("sleep",), str(exc))]
        return ()

    def is_read_only(self, params: Any) -> bool:
        return True

    def invocation(self, params: Any, with_: Mapping[str, Any] | None, ctx: StepContext) -> Invocation:
        try:
            seconds = parse_duration(params)
        except ValueError as exc:
            raise ActionError(f"sleep: {exc}", retryable=False) from None
        return Invocation(asyncio.sleep, (seconds,))


async def _log(message: Any, level: str) -> Any:
    getattr(get_logger("orchestrator.playbook"), level)("playbook.log", message=message)
    return message


class Log(Action):
    """Write a log line (a message, or {message, level}); output is the message."""

    name = "log"
    params_type: ClassVar[Any] = "orchestrator.actions.params:LogValue"

    def is_read_only(self, params: Any) -> bool:
        return True

    def invocation(self, params: Any, with_: Mapping[str, Any] | None, ctx: StepContext) -> Invocation:
        if isinstance(params, dict):
            return Invocation(_log, (params["message"], params.get("level", "info")))
        return Invocation(_log, (params, "info"))


async def _assert(that: list[tuple[str, Any]], message: str | None) -> bool:
    failed = [source for source, value in that if not value]
    if failed:
        raise AssertionFailed(message or f"assertion failed: {failed[0]}")
    return True


class Assert(Action):
    """Fail the step unless every expression under `that:` is true."""

    name = "assert"
    params_type: ClassVar[Any] = "orchestrator.actions.params:AssertParams"
    expressions: ClassVar[frozenset[str]] = frozenset({"that"})

    def is_read_only(self, params: Any) -> bool:
        return True

    def invocation(self, params: Any, with_: Mapping[str, Any] | None, ctx: StepContext) -> Invocation:
        values = params["that"] if isinstance(params["that"], list) else [params["that"]]
        raw = ctx.raw["that"] if isinstance(ctx.raw, dict) else None
        labels = raw if isinstance(raw, list) else [raw] * len(values)
        return Invocation(_assert, ([(str(lbl or v), v) for lbl, v in zip(labels, values, strict=False)], params.get("message")))


async def _value(value: Any) -> Any:
    return value


class Set(Action):
    """Output a value (rendered), for later steps to use as `steps.<id>.output`."""

    name = "set"
    params_type: ClassVar[Any] = "orchestrator.actions.params:AnyValue"

    def is_read_only(self, params: Any) -> bool:
        return True

    def invocation(self, params: Any, with_: Mapping[str, Any] | None, ctx: StepContext) -> Invocation:
        return Invocation(_value, (params,))
