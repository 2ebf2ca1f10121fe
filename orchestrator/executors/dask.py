"""A Dask cluster as an executor, for cpu (or blocking) work that outgrows one machine."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ExecutorUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from orchestrator.executors.base import Invocation


def _with_log_context(log_context: Mapping[str, Any], fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    import structlog

    with structlog.contextvars.bound_contextvars(**log_context):
        return fn(*args, **kwargs)


class DaskExecutor:
    """Submits calls to a Dask scheduler (`address`), or to a LocalCluster started on 127.0.0.1 when
    the address is ``local``. Dask is imported only when the first call is made."""

    name = "dask"

    def __init__(self, address: str, workers: int | None = None) -> None:
        self.address = address
        self.workers = workers
        self._client: Any = None
        self._cluster: Any = None
        self._starting: asyncio.Lock | None = None
        self._cancels: set[asyncio.Future[Any]] = set()

    async def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        # Steps that start together must share one cluster, not each start their own.
        self._starting = self._starting or asyncio.Lock()
        async with self._starting:
            if self._client is None:
                await self._connect()
        return self._client

    async def _connect(self) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorUnavailable("the dask executor needs the `dask` extra: pip install 'orchestrator[dask]'") from None
        address: Any = self.address
        if self.address == "local":
            self._cluster = await LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=self.workers or 2, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, asynchronous=True,
            )
            address = self._cluster
        self._client = await Client(address, asynchronous=True)  # type: ignore[no-untyped-call]

    async def run(self, call: Invocation, log_context: Mapping[str, Any]) -> Any:
        client = await self._get_client()
        future = client.submit(_with_log_context, dict(log_context), call.fn, call.args, dict(call.kwargs), pure=False)
        try:
            return await future
        except BaseException:
            if not future.done():  # the caller gave up (a timeout, a failing sibling, Ctrl-C)
                task = asyncio.ensure_future(self._stop(client, future))
                self._cancels.add(task)
                task.add_done_callback(self._cancels.discard)
            raise

    async def _stop(self, client: Any, future: Any) -> None:
        """Stop a call nobody waits for. Cancelling a Dask future only forgets a task that has not
        started: one already running keeps its worker busy to the end, and the next steps queue
        behind it. So the worker process running it exits (its nanny starts a new one), as the
        process pool kills the worker of a cancelled call; the exit runs on the worker's event
        loop, not in the busy task thread. Dask runs other calls that were on that worker again
        elsewhere."""
        processing = await client.processing()
        workers = [worker for worker, keys in processing.items() if future.key in keys]
        cancelling = future.cancel()  # first, so the task is not rescheduled when its worker goes
        if inspect.isawaitable(cancelling):
            await cancelling
        if workers:
            with contextlib.suppress(Exception):  # the worker's connection drops as it exits: expected
                await client.run(os._exit, 1, workers=workers, on_error="ignore")

    async def aclose(self) -> None:
        for task in list(self._cancels):
            with contextlib.suppress(Exception):
                await task
        client, self._client = self._client, None
        cluster, self._cluster = self._cluster, None
        if client is not None:
            await client.close()
        if cluster is not None:
            await cluster.close()
