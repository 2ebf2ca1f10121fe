"""The event loop as an executor: coroutines are awaited, plain functions called in place."""

from __future__ import annotations

import inspect
from types import CoroutineType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping

    from orchestrator.executors.base import Invocation


class AsyncioExecutor:
    """Awaits coroutine functions on the running loop. A plain function is called on the loop
    thread (that is what `kind: non-blocking` on a synchronous callable asks for)."""

    name = "asyncio"

    def run(self, call: Invocation, log_context: Mapping[str, Any]) -> Awaitable[Any]:
        # Not a coroutine itself: the action's own awaitable is returned, one frame fewer per item.
        result = call.fn(*call.args, **call.kwargs)
        if type(result) is CoroutineType or inspect.isawaitable(result):  # the first test is the cheap one
            return result
        return _ready(result)

    async def aclose(self) -> None:
        return None


async def _ready(value: Any) -> Any:
    return value
