"""What an executor is: something that runs an Invocation and can be closed.

Four implementations: the event loop itself (`asyncio`), a thread pool (`threads`), a process pool
(`processes`) and a Dask cluster (`dask`). Pools start lazily, on the first call, so building
executors (as a dry run does) starts no thread and no process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

_NO_KWARGS: Mapping[str, Any] = {}  # shared, never written: a plain dict is the fastest to unpack


class Invocation:
    """A callable and its arguments, ready for an executor. One per item attempt: a slotted class,
    which is built in half the time of a NamedTuple."""

    __slots__ = ("args", "fn", "kwargs")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] = _NO_KWARGS) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs



class Executor(Protocol):
    """Runs calls for one kind of work."""

    #: "asyncio", "threads", "processes" or "dask": what results and logs call it.
    name: str

    def run(self, call: Invocation, log_context: Mapping[str, Any]) -> Awaitable[Any]:
        """Run `call`: awaiting the result gives the call's result, or raises its exception."""
        ...

    async def aclose(self) -> None:
        """Release threads, processes and connections. Idempotent."""
        ...
