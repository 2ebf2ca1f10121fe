"""`Scheduler`: the engine's executors for Python scripts that need no YAML; `SyncScheduler`: the same
for scripts with no event loop.

    async with Scheduler(retry=3, timeout=30, limits={"api": {"concurrency": 10, "rate": "20/s"}}) as sched:
        vpcs = await sched.submit(ec2.describe_vpcs, kind="blocking", limit="api")
        async for digest in sched.map(hash_file, paths, kind="cpu", concurrency=8, return_exceptions=True):
            ...

Calls are retried, bounded and limited by the engine's own parts: a `retry:` spec becomes the
planner's `RetryPolicy` (first attempt outside tenacity, waits that honour Retry-After), a timeout
bounds each attempt with the engine's `Deadlines` (a timed-out attempt raises `StepTimeout`, and is
retried like any error), and named limits are the engine's `Limit`s, taken outside the timeout in
the order the Scheduler declares them, as a run takes a playbook's.

The callable's positional arguments follow it (typed: mypy checks them against the callable, and
the result's type flows out); its keyword arguments go through `functools.partial`, as with anyio's
`to_thread.run_sync` and trio's `start_soon`, which leaves keywords free for the options.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, TypeVarTuple, Unpack, overload

from orchestrator.config import Config, load_config
from orchestrator.engine.deadline import Deadlines
from orchestrator.engine.limits import Limit
from orchestrator.errors import ExecutorUnavailable
from orchestrator.executors.base import Invocation
from orchestrator.executors.build import Executors
from orchestrator.model.playbook import LimitSpec, RetrySpec
from orchestrator.model.values import KINDS, Kind, parse_positive_duration
from orchestrator.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
    from types import TracebackType

T = TypeVar("T")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")

#: What `retry=` takes: `3` (attempts), a `retry:` mapping as in a playbook, a `RetrySpec`, or None (no retry).
RetryArg = int | RetrySpec | Mapping[str, Any] | None
#: What `timeout=` takes: seconds, a duration such as `"30s"`, or None (no bound).
TimeoutArg = float | str | None


class CallOptions(TypedDict, total=False):
    """Options of one `submit` or `map`; each left out takes the Scheduler's."""

    kind: Kind | None
    retry: RetryArg
    timeout: TimeoutArg
    limit: str | Sequence[str]


class _Prepared:
    """One call's options, normalised once (a `map` prepares them once for all its items)."""

    __slots__ = ("deadlines", "executor", "limits", "policy")

    def __init__(self, executor: Any, policy: RetryPolicy | None, deadlines: Deadlines | None, limits: tuple[Limit, ...]) -> None:
        self.executor, self.policy, self.deadlines, self.limits = executor, policy, deadlines, limits


def _policy(retry: RetryArg) -> RetryPolicy | None:
    if retry is None:
        return None
    spec = retry if isinstance(retry, RetrySpec) else RetrySpec.parse(retry)
    return RetryPolicy(spec) if spec.attempts > 1 else None


def _seconds(timeout: TimeoutArg) -> float | None:
    return None if timeout is None else parse_positive_duration(timeout)


class Scheduler:
    """Runs callables where their kind of work belongs: coroutines on the loop, blocking calls on
    threads, cpu work on processes (or wherever `config` says). Pools start on first use and are
    shut down when the `async with` block ends.

    `retry`, `timeout` and `limit` are the defaults of every call (each call may say otherwise);
    `limits` names the caps calls can take (`{"api": {"concurrency": 10, "rate": "20/s"}}`)."""

    def __init__(
        self, config: Config | None = None, *, sys_path: Iterable[str] = (), retry: RetryArg = None,
        timeout: TimeoutArg = None, limits: Mapping[str, LimitSpec | Mapping[str, Any]] | None = None,
        limit: str | Sequence[str] = (),
    ) -> None:
        from orchestrator.api import refuse_in_worker_import

        refuse_in_worker_import()
        self.config = config or load_config()
        self._sys_path = list(sys_path)
        self._executors: Executors | None = None
        self._retry = _policy(retry)
        self._timeout = _seconds(timeout)
        self._limits = {
            name: Limit(name, spec if isinstance(spec, LimitSpec) else LimitSpec.parse(spec))
            for name, spec in (limits or {}).items()
        }
        self._limit = self._named(limit)
        self._deadlines: dict[float, Deadlines] = {}

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
    async def submit(self, fn: Callable[[*Ts], Awaitable[R]], /, *args: *Ts, **options: Unpack[CallOptions]) -> R: ...
    @overload
    async def submit(self, fn: Callable[[*Ts], R], /, *args: *Ts, **options: Unpack[CallOptions]) -> R: ...

    async def submit(self, fn: Callable[[*Ts], Any], /, *args: *Ts, **options: Unpack[CallOptions]) -> Any:
        """Run `fn(*args)` as `kind` of work (inferred: coroutine functions are non-blocking, other
        callables blocking), with the call's retry, timeout and limits, and return its result."""
        return await self._call(self._prepare(fn, options), fn, args)

    @overload
    def map(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T], *, concurrency: int = 8,
        return_exceptions: Literal[False] = False, **options: Unpack[CallOptions],
    ) -> AsyncIterator[R]: ...
    @overload
    def map(
        self, fn: Callable[[T], R], items: Iterable[T], *, concurrency: int = 8,
        return_exceptions: Literal[False] = False, **options: Unpack[CallOptions],
    ) -> AsyncIterator[R]: ...
    @overload
    def map(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T], *, concurrency: int = 8,
        return_exceptions: Literal[True], **options: Unpack[CallOptions],
    ) -> AsyncIterator[R | Exception]: ...
    @overload
    def map(
        self, fn: Callable[[T], R], items: Iterable[T], *, concurrency: int = 8,
        return_exceptions: Literal[True], **options: Unpack[CallOptions],
    ) -> AsyncIterator[R | Exception]: ...

    async def map(
        self, fn: Callable[[T], Any], items: Iterable[T], *, concurrency: int = 8, return_exceptions: bool = False,
        **options: Unpack[CallOptions],
    ) -> AsyncIterator[Any]:
        """Yield `fn(item)` for each item, in item order, with at most `concurrency` calls in flight.
        Items are pulled lazily, so an iterable of any size costs memory for `concurrency` calls.

        A failing call raises at its turn and cancels the calls in flight; with
        `return_exceptions=True` its exception is yielded in its place and the others go on."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        prepared = self._prepare(fn, options)
        call = self._call if not return_exceptions else self._call_or_error
        window: deque[asyncio.Task[Any]] = deque()
        try:
            for item in items:
                window.append(asyncio.ensure_future(call(prepared, fn, (item,))))
                if len(window) >= concurrency:
                    yield await window.popleft()
            while window:
                yield await window.popleft()
        finally:
            for task in window:
                task.cancel()
            if window:
                await asyncio.gather(*window, return_exceptions=True)

    # --- one call ---------------------------------------------------------------------------------

    def _named(self, limit: str | Sequence[str]) -> tuple[Limit, ...]:
        names = (limit,) if isinstance(limit, str) else tuple(limit)
        unknown = [n for n in names if n not in self._limits]
        if unknown:
            known = ", ".join(self._limits) or "none defined"
            raise ValueError(f"unknown limit {unknown[0]!r}; limits: {known}")
        # Always in the Scheduler's order, so two calls naming [a, b] and [b, a] cannot deadlock.
        return tuple(lim for name, lim in self._limits.items() if name in names)

    def _prepare(self, fn: Callable[..., Any], options: CallOptions) -> _Prepared:
        if self._executors is None:
            raise ExecutorUnavailable("use the Scheduler in `async with Scheduler() as sched:`")
        kind = options.get("kind") or ("non-blocking" if inspect.iscoroutinefunction(fn) else "blocking")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        policy = _policy(options["retry"]) if "retry" in options else self._retry
        seconds = _seconds(options["timeout"]) if "timeout" in options else self._timeout
        limits = self._named(options["limit"]) if "limit" in options else self._limit
        # One Deadlines per timeout: its attempts then expire in the order they start (one timer).
        deadlines = None if seconds is None else self._deadlines.setdefault(seconds, Deadlines(seconds))
        return _Prepared(self._executors[kind], policy, deadlines, limits)

    async def _call(self, prepared: _Prepared, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        invocation = Invocation(fn, args, {})

        async def attempt(_: int = 1) -> Any:
            taken: list[Limit] = []
            try:
                for lim in prepared.limits:  # outside the timeout: waiting for a slot is not the call's time
                    if not lim.take():
                        await lim.acquire()
                    taken.append(lim)
                if prepared.deadlines is None:
                    return await prepared.executor.run(invocation, {})
                with prepared.deadlines.attempt():
                    return await prepared.executor.run(invocation, {})
            finally:
                for lim in reversed(taken):
                    lim.release()

        try:
            return await attempt()
        except Exception as first:
            policy = prepared.policy
            if policy is None or not policy.retries(first):
                raise
            result, _ = await policy.after(first, attempt, asyncio.sleep)
            return result

    async def _call_or_error(self, prepared: _Prepared, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        try:
            return await self._call(prepared, fn, args)
        except Exception as exc:  # cancellation and interrupts still propagate
            return exc


class SyncScheduler:
    """A `Scheduler` for code with no event loop: ``with SyncScheduler() as sched:``, then
    `submit` returns the result and `map` is a plain iterator. It runs its own event loop (an
    `asyncio.Runner`) in the calling thread, so it cannot be used inside a running loop (use
    `Scheduler` there)."""

    def __init__(
        self, config: Config | None = None, *, sys_path: Iterable[str] = (), retry: RetryArg = None,
        timeout: TimeoutArg = None, limits: Mapping[str, LimitSpec | Mapping[str, Any]] | None = None,
        limit: str | Sequence[str] = (),
    ) -> None:
        self.scheduler = Scheduler(config, sys_path=sys_path, retry=retry, timeout=timeout, limits=limits, limit=limit)
        self._runner: asyncio.Runner | None = None

    def __enter__(self) -> SyncScheduler:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("SyncScheduler cannot run inside a running event loop; use Scheduler there")
        runner = asyncio.Runner()
        runner.run(self.scheduler.__aenter__())
        self._runner = runner
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            with runner:  # closes the loop even if closing the pools fails
                runner.run(self.scheduler.__aexit__(et, e, tb))

    def _loop(self) -> asyncio.Runner:
        if self._runner is None:
            raise ExecutorUnavailable("use the SyncScheduler in `with SyncScheduler() as sched:`")
        return self._runner

    @overload
    def submit(self, fn: Callable[[*Ts], Awaitable[R]], /, *args: *Ts, **options: Unpack[CallOptions]) -> R: ...
    @overload
    def submit(self, fn: Callable[[*Ts], R], /, *args: *Ts, **options: Unpack[CallOptions]) -> R: ...

    def submit(self, fn: Callable[[*Ts], Any], /, *args: *Ts, **options: Unpack[CallOptions]) -> Any:
        """`Scheduler.submit`, waited for."""
        return self._loop().run(self.scheduler.submit(fn, *args, **options))

    @overload
    def map(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T], *, concurrency: int = 8,
        return_exceptions: Literal[False] = False, **options: Unpack[CallOptions],
    ) -> Iterator[R]: ...
    @overload
    def map(
        self, fn: Callable[[T], R], items: Iterable[T], *, concurrency: int = 8,
        return_exceptions: Literal[False] = False, **options: Unpack[CallOptions],
    ) -> Iterator[R]: ...
    @overload
    def map(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T], *, concurrency: int = 8,
        return_exceptions: Literal[True], **options: Unpack[CallOptions],
    ) -> Iterator[R | Exception]: ...
    @overload
    def map(
        self, fn: Callable[[T], R], items: Iterable[T], *, concurrency: int = 8,
        return_exceptions: Literal[True], **options: Unpack[CallOptions],
    ) -> Iterator[R | Exception]: ...

    def map(
        self, fn: Callable[[T], Any], items: Iterable[T], *, concurrency: int = 8, return_exceptions: bool = False,
        **options: Unpack[CallOptions],
    ) -> Iterator[Any]:
        """`Scheduler.map` as an iterator. Calls in flight go on in threads and processes while the
        loop body runs; those on the event loop go on at the next item."""
        runner = self._loop()
        results = self.scheduler.map(fn, items, concurrency=concurrency, return_exceptions=return_exceptions, **options)  # type: ignore[call-overload]
        return _drive(runner, results)


def _drive(runner: asyncio.Runner, results: AsyncIterator[Any]) -> Iterator[Any]:
    async def step() -> Any:
        return await anext(results)

    try:
        while True:
            try:
                yield runner.run(step())
            except StopAsyncIteration:
                return
    finally:
        aclose = getattr(results, "aclose", None)
        if aclose is not None:
            runner.run(aclose())

