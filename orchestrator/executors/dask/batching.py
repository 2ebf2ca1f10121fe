"""Many calls, few scheduler round trips: submissions and result fetches in batches.

Each Dask round trip costs the scheduler (and, on a LocalCluster, the client's own event loop) about
the same whether it carries one call or a hundred. Fetched as they arrived (a gather per turn of the
event loop), 2,000 no-op calls at 100 in flight on two local workers took ~1,000 graph updates and
~1,000 gathers against Dask's own 20 + 20 for ``client.map`` of 100 and one ``gather``, and 1.3-1.7x
its time (bench/dask_overhead.py).

* `Submissions`: the calls made in one turn of the event loop go to the scheduler as one
  ``client.map``.
* `Fetches`: finished results are fetched with one ``client.gather`` for many, one gather at a time;
  a result waits for company while `fetch_now` says so, for at most `HOLD` seconds. Callers whose
  calls come back together call again together, so the next submissions are batched as well: about
  100 gathers and 100 graph updates for the same bench, and 1.0-1.17x.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from typing import TypeAlias

    Spawn: TypeAlias = Callable[[Coroutine[Any, Any, Any]], object]  # makes a task its caller owns

#: The longest a finished result waits for others to be fetched with it. At 100 in flight on two
#: local workers, no-op results arrive ~500 per second: a quarter of the calls in 50 ms.
HOLD = 0.05


def fetch_now(ready: int, in_flight: int, unstarted: int) -> bool:
    """Whether to fetch the `ready` finished results now, of the `in_flight` calls awaited (ready ones
    included), `unstarted` of which no worker has begun yet.

    Waiting costs no throughput while the cluster has calls of ours to start: its workers stay busy.
    So fetch once a quarter of the calls in flight are ready (a few in flight: the first is enough),
    or as soon as nothing waits to start, since a worker may otherwise idle until its caller calls again.
    """
    return ready * 4 >= in_flight or unstarted <= 0


class Submissions:
    """Sends the calls of one turn of the event loop to the scheduler as one ``client.map``. Cancelling
    abandoned futures runs in tasks made by `spawn`, whose owner awaits them on closing."""

    def __init__(self, spawn: Spawn) -> None:
        self._spawn = spawn
        self._waiting: list[tuple[bytes, str, asyncio.Future[Any]]] = []

    async def submit(self, client: Any, task: Callable[[bytes], Any], data: bytes, key: str) -> Any:
        """The Dask future of ``task(data)`` under `key`, once its batch has been submitted. Every call
        of a batch goes through the `client` and `task` of its first."""
        submitted: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._waiting:
            asyncio.get_running_loop().call_soon(self._flush, client, task)
        self._waiting.append((data, key, submitted))
        try:
            return await submitted
        except asyncio.CancelledError:
            if submitted.done() and not submitted.cancelled():  # submitted, then cancelled before resuming
                self._spawn(client.cancel([submitted.result()]))
            raise

    def _flush(self, client: Any, task: Callable[[bytes], Any]) -> None:
        batch, self._waiting = self._waiting, []
        try:
            futures = client.map(task, [d for d, _, _ in batch], key=[k for _, k, _ in batch], pure=False)
        except Exception as exc:
            for _, _, submitted in batch:
                if not submitted.done():
                    submitted.set_exception(exc)
            return
        abandoned = []
        for future, (_, _, submitted) in zip(futures, batch, strict=True):
            if submitted.done():  # its caller was cancelled meanwhile: nobody will await it
                abandoned.append(future)
            else:
                submitted.set_result(future)
        if abandoned:
            self._spawn(client.cancel(abandoned))


class Fetches:
    """Fetches the results of finished Dask futures in batches, one ``client.gather`` at a time.

    `counts` gives (calls in flight, calls not yet started) for `fetch_now`; call `reconsider` when
    they change other than by a call finishing. Gathers run as tasks made by `spawn`, whose owner
    awaits them on closing."""

    def __init__(self, counts: Callable[[], tuple[int, int]], spawn: Spawn) -> None:
        self._counts = counts
        self._spawn = spawn
        self._ready: list[tuple[Any, asyncio.Future[Any]]] = []
        self._due = 0.0  # when the oldest ready result has waited `HOLD`
        self._timer: asyncio.TimerHandle | None = None
        self._fetching = False

    async def fetch(self, future: Any) -> Any:
        """The result of `future`, which has finished."""
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Any] = loop.create_future()
        if not self._ready:
            self._due = loop.time() + HOLD
        self._ready.append((future, result))
        self.reconsider()
        return await result

    def reconsider(self) -> None:
        """Start a gather if one is due; otherwise make sure the oldest result waits no longer than `HOLD`."""
        if self._fetching or not self._ready:
            return
        loop = asyncio.get_running_loop()
        in_flight, unstarted = self._counts()
        if fetch_now(len(self._ready), in_flight, unstarted) or loop.time() >= self._due:
            self._fetching = True
            self._spawn(self._gather())
        elif self._timer is None:
            self._timer = loop.call_at(self._due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.reconsider()

    def close(self) -> None:
        """Stop the timer: nothing is fetched any more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _gather(self) -> None:
        self.close()  # this batch takes every result that waits
        batch, self._ready = self._ready, []
        try:
            await _gather_into(batch)
        finally:
            self._fetching = False
            self.reconsider()  # what finished meanwhile


async def _gather_into(batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
    try:
        values = await batch[0][0].client.gather([f for f, _ in batch])
    except asyncio.CancelledError:  # the client is closing: its callers must not wait forever
        for _, result in batch:
            result.cancel()
        raise
    except Exception:  # one of them is lost (its worker went): each on its own, to tell which
        for future, result in batch:
            try:
                value = await future._result()
            except Exception as exc:
                if not result.done():
                    result.set_exception(exc)
            else:
                if not result.done():
                    result.set_result(value)
        return
    for (_, result), value in zip(batch, values, strict=True):
        if not result.done():  # its caller may have been cancelled meanwhile
            result.set_result(value)
