"""`Scheduler`: the engine's executors for Python scripts that need no YAML.

    async with Scheduler() as sched:
        vpcs = await sched.submit(ec2.describe_vpcs, kind="blocking")
        async for digest in sched.map(hash_file, paths, kind="cpu", concurrency=8):
            ...
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar, overload

from orchestrator.config import Config, load_config
from orchestrator.errors import ExecutorUnavailable
from orchestrator.executors.base import Invocation
from orchestrator.executors.build import Executors
from orchestrator.model.values import KINDS, Kind

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
    from types import TracebackType

T = TypeVar("T")
R = TypeVar("R")


class Scheduler:
    """Runs callables where their kind of work belongs: coroutines on the loop, blocking calls on
    threads, cpu work on processes (or wherever `config` says). Pools start on first use and are
    shut down when the `async with` block ends."""

    def __init__(self, config: Config | None = None, *, sys_path: Iterable[str] = ()) -> None:
        from orchestrator.api import refuse_in_worker_import

        refuse_in_worker_import()
        self.config = config or load_config()
        self._sys_path = list(sys_path)
        self._executors: Executors | None = None

    async def __aenter__(self) -> Scheduler:
        self._executors = Executors(self.config, self._sys_path)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        executors, self._executors = self._executors, None
        if executors is not None:
            await executors.aclose()

    def executor_name(self, kind: Kind) -> str:
        """Which executor type runs `kind` ("asyncio", "threads", "processes" or "dask")."""
        return self.config.executor_for(kind).type

    @overload
    async def submit(self, fn: Callable[..., Awaitable[R]], /, *args: Any, kind: Kind | None = None, **kwargs: Any) -> R: ...
    @overload
    async def submit(self, fn: Callable[..., R], /, *args: Any, kind: Kind | None = None, **kwargs: Any) -> R: ...

    async def submit(self, fn: Callable[..., Any], /, *args: Any, kind: Kind | None = None, **kwargs: Any) -> Any:
        """Run `fn(*args, **kwargs)` as `kind` of work (inferred: coroutine functions are non-blocking,
        other callables blocking) and return its result."""
        if self._executors is None:
            raise ExecutorUnavailable("use the Scheduler in `async with Scheduler() as sched:`")
        kind = kind or ("non-blocking" if inspect.iscoroutinefunction(fn) else "blocking")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        return await self._executors[kind].run(Invocation(fn, args, kwargs), {})

    @overload
    def map(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T], *, kind: Kind | None = None, concurrency: int = 8
    ) -> AsyncIterator[R]: ...
    @overload
    def map(self, fn: Callable[[T], R], items: Iterable[T], *, kind: Kind | None = None, concurrency: int = 8) -> AsyncIterator[R]: ...

    async def map(
        self, fn: Callable[[T], Any], items: Iterable[T], *, kind: Kind | None = None, concurrency: int = 8
    ) -> AsyncIterator[Any]:
        """Yield `fn(item)` for each item, in item order, with at most `concurrency` calls in flight.
        Items are pulled lazily, so an iterable of any size costs memory for `concurrency` calls."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        window: deque[asyncio.Task[Any]] = deque()
        source = iter(items)
        try:
            for item in source:
                window.append(asyncio.ensure_future(self.submit(fn, item, kind=kind)))
                if len(window) >= concurrency:
                    yield await window.popleft()
            while window:
                yield await window.popleft()
        finally:
            for task in window:
                task.cancel()
            if window:
                await asyncio.gather(*window, return_exceptions=True)
