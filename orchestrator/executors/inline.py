"""The event loop as an executor: coroutines are awaited, plain functions called in place."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from orchestrator.actions.base import Invocation


class AsyncioExecutor:
    """Awaits coroutine functions on the running loop. A plain function is called on the loop
    thread (that is what `kind: non-blocking` on a synchronous callable asks for)."""

    name = "asyncio"

    async def run(self, call: Invocation, log_context: Mapping[str, Any]) -> Any:
        result = call.fn(*call.args, **call.kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def aclose(self) -> None:
        return None
