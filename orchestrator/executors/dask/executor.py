"""`DaskExecutor`: calls as Dask tasks, with the process pool's failure semantics.

* **Batched.** Calls made in the same turn of the event loop go to the scheduler as one
  ``client.map``, and finished results are fetched many to one ``client.gather`` (:mod:`.batching`):
  awaiting a Dask future fetches its result alone, a round trip per call.
* **A dead worker fails its calls.** The scheduler announces a worker's removal on its ``all``
  event topic with the keys it was running; each of ours fails with `DaskWorkerDied`, naming the
  worker, and is cancelled, so a copy Dask may have started elsewhere is forgotten. The step's retry
  policy decides what follows, and `attempts` counts it.
* **No workers.** When the cluster has had no worker for `no_workers_timeout`, every waiting call
  fails with ExecutorUnavailable saying so, and so does every new one until a worker joins.
* **Cancelled calls.** Cancelling the awaiting task cancels the Dask future; a task that has not
  started is forgotten. One already running cannot be interrupted (Dask runs tasks in threads): when
  its worker runs nothing but this executor's tasks, that worker process is ended (its nanny starts a
  new one, and Dask runs our other tasks that were there again); otherwise it is left to finish, its
  result discarded, and a warning says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ExecutorUnavailable, StepError, WorkerDied
from orchestrator.executors.dask.batching import Fetches, Submissions
from orchestrator.executors.dask.connect import dashboard_link, open_client
from orchestrator.executors.dask.shipping import pack
from orchestrator.executors.processes.child import describe
from orchestrator.logs import SECRETS_KEY, get_logger

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from orchestrator.config import ExecutorSpec
    from orchestrator.executors.base import Invocation

log = get_logger()
_LEVELS = frozenset({"debug", "info", "warning", "error", "critical", "exception"})


class DaskWorkerDied(WorkerDied):
    """The Dask worker running a call died or left the cluster before the call finished."""

    def __init__(self, worker: str, running: str) -> None:
        StepError.__init__(self, f"Dask worker {worker} died while running {running}")
        self.pid, self.exitcode, self.running, self.worker = 0, None, running, worker

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.worker, self.running))


class DaskExecutor:
    """Submits calls to a Dask cluster, reached or started as `spec` says; the modules of the
    folders in `sys_path` are shipped to its workers. Nothing connects until the first call."""

    name = "dask"

    def __init__(self, spec: ExecutorSpec, sys_path: Sequence[str] = ()) -> None:
        self.spec = spec
        self.sys_path = tuple(sys_path)
        self._client: Any = None
        self._cluster: Any = None
        self._failed: ExecutorUnavailable | None = None
        self._starting: asyncio.Lock | None = None
        self._topic = ""
        self._live: dict[str, Any] = {}  # key -> Dask future, for the calls awaited now
        self._died: dict[str, str | None] = {}  # key -> the worker that died under it (None: no workers)
        self._workers: set[str] = set()
        self._started: set[str] = set()  # keys of ours that a worker has begun to run
        self._killed: set[str] = set()  # workers ended here to stop a cancelled call
        self._no_workers: ExecutorUnavailable | None = None
        self._no_workers_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._submissions = Submissions(self._spawn)
        self._fetches = Fetches(lambda: (len(self._live), len(self._live) - len(self._started)), self._spawn)

    # -- connecting: once, shared by every call, its failure remembered --------------------------

    async def _get_client(self) -> Any:
        self._starting = self._starting or asyncio.Lock()
        async with self._starting:  # steps that start together share one connection
            if self._failed is not None:
                raise self._failed
            if self._client is None:
                try:
                    await self._connect()
                except ExecutorUnavailable as exc:
                    self._failed = exc  # every waiting and later call fails at once, no new attempt
                    raise
        return self._client

    async def _connect(self) -> None:
        from distributed.diagnostics.plugin import WorkerPlugin  # noqa: F401  (the extra is there)

        from orchestrator.executors.dask.worker import CodePlugin

        client, self._cluster = await open_client(self.spec)
        try:
            self._topic = f"orchestrator-logs-{client.id}"
            client.subscribe_topic(self._topic, self._on_log)
            client.subscribe_topic("all", self._on_cluster_event)
            identity = await client.scheduler.identity(n_workers=-1)
            self._workers = set(identity.get("workers", {}))
            for folder in self.sys_path:
                shipment = pack(Path(folder))
                if shipment.modules:
                    plugin = CodePlugin(shipment.key, shipment.data, shipment.modules)
                    await client.register_plugin(plugin, name=plugin.name)
                    log.info("dask.shipped", modules=list(shipment.modules), key=shipment.key, bytes=len(shipment.data))
        except BaseException:
            await client.close()
            raise
        self._client = client
        log.info("dask.connected", scheduler=client.scheduler.address, workers=len(self._workers),
                 dashboard=dashboard_link(client, identity))
        if not self._workers:
            self._watch_no_workers()

    # -- one call ---------------------------------------------------------------------------------

    async def run(self, call: Invocation, log_context: Mapping[str, Any]) -> Any:
        client = self._client if self._client is not None else await self._get_client()
        if self._no_workers is not None:
            raise self._no_workers
        context = {k: v for k, v in log_context.items() if k != SECRETS_KEY}  # lines are masked at home
        key = f"{context.get('step', 'call')}-{uuid.uuid4().hex}"
        future = await self._submit(client, call, context, key)
        self._live[key] = future
        try:
            await future._state.wait()  # not `await future`: that fetches each result in its own round trip
            if key in self._died:
                raise self._death(key, call)
            if future.status == "finished":
                return await self._fetches.fetch(future)
            try:
                return await future._result()
            except BaseException as exc:
                if type(exc).__name__ == "KilledWorker":  # the scheduler's allowed-failures ran out
                    raise DaskWorkerDied(getattr(exc, "last_worker").address, describe(call.fn)) from None  # noqa: B009
                if key in self._died:
                    raise self._death(key, call) from None
                raise
        except asyncio.CancelledError:
            if not future.done():  # a timeout, a failing sibling, Ctrl-C
                self._spawn(self._stop(client, future))
            raise
        finally:
            self._live.pop(key, None)
            self._died.pop(key, None)
            self._started.discard(key)

    def _death(self, key: str, call: Invocation) -> Exception:
        worker = self._died[key]
        if worker is None:
            return self._no_workers or ExecutorUnavailable(f"the Dask cluster at {self._where()} has no workers")
        return DaskWorkerDied(worker, describe(call.fn))

    async def _submit(self, client: Any, call: Invocation, context: dict[str, Any], key: str) -> Any:
        import cloudpickle  # type: ignore[import-untyped]

        from orchestrator.executors.dask.worker import Payload, run_call

        try:
            data = cloudpickle.dumps(Payload(call.fn, call.args, call.kwargs, context, self._topic, key))
        except Exception as exc:
            exc.add_note(f"{describe(call.fn)}: a call and its arguments are pickled to reach a Dask worker, so they must be "
                         "picklable: a module-level function (no lambda or closure) and arguments without locks, sockets or open files")
            raise
        return await self._submissions.submit(client, run_call, data, key)

    # -- the cluster's events: log lines of our calls, workers coming and going -------------------

    def _on_log(self, event: tuple[float, Any]) -> None:
        message = event[1]
        started = message.get("started")
        if started is not None:
            if started in self._live:
                self._started.add(started)
                self._fetches.reconsider()  # one fewer waits to start: maybe no result need wait longer
            return
        fields = dict(message.get("fields") or {})
        name = str(fields.pop("event", ""))
        level = message.get("level")
        method = level if level in _LEVELS else "info"
        # A fresh context: this runs in Dask's task, whose context was copied from some step.
        contextvars.Context().run(lambda: getattr(log, method)(name, **fields))

    def _on_cluster_event(self, event: tuple[float, Any]) -> None:
        message = event[1]
        if not isinstance(message, dict):
            return
        action, worker = message.get("action"), message.get("worker")
        if action == "add-worker" and isinstance(worker, str):
            self._workers.add(worker)
            self._no_workers = None
            if self._no_workers_timer is not None:
                self._no_workers_timer.cancel()
                self._no_workers_timer = None
        elif action == "remove-worker" and isinstance(worker, str):
            self._workers.discard(worker)
            if not message.get("expected") and worker not in self._killed:
                hit = [k for k in message.get("processing-tasks", ()) if k in self._started and k in self._live]
                for key in hit:
                    self._died[key] = worker
                self._cancel([self._live[k] for k in hit], f"worker {worker} died")
            if not self._workers:
                self._watch_no_workers()

    def _watch_no_workers(self) -> None:
        if self._no_workers_timer is None:
            loop = asyncio.get_running_loop()
            self._no_workers_timer = loop.call_later(self.spec.no_workers_timeout, self._give_up)

    def _give_up(self) -> None:
        self._no_workers_timer = None
        if self._workers:
            return
        self._no_workers = ExecutorUnavailable(
            f"the Dask cluster at {self._where()} has had no workers for {self.spec.no_workers_timeout:g}s "
            "(`no_workers_timeout`); start workers, or check why they died in their own logs"
        )
        for key in self._live:
            self._died.setdefault(key, None)
        self._cancel(list(self._live.values()), "no workers")

    def _cancel(self, futures: list[Any], reason: str) -> None:
        if futures and self._client is not None:
            self._spawn(self._client.cancel(futures, reason=reason))

    def _where(self) -> str:
        client = self._client
        return str(client.scheduler.address) if client is not None else str(self.spec.address or self.spec.cluster)

    # -- cancelling and closing ---------------------------------------------------------------------

    async def _stop(self, client: Any, future: Any) -> None:
        """Stop a call nobody waits for (see the module docstring)."""
        processing = await client.processing()
        await client.cancel([future], reason="the step gave up on it")
        ours = {future.key, *self._live}
        for worker, keys in processing.items():
            if future.key not in keys:
                continue
            if set(keys) <= ours:
                self._killed.add(worker)
                with contextlib.suppress(Exception):  # its connection drops as it exits: expected
                    await client.run(os._exit, 1, workers=[worker], on_error="ignore")
            else:
                log.warning("dask.left_running", key=future.key, worker=worker,
                            reason="the worker runs other tasks too; the call runs to its end there, its result discarded")

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        self._fetches.close()
        if self._no_workers_timer is not None:
            self._no_workers_timer.cancel()
            self._no_workers_timer = None
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        client, self._client = self._client, None
        cluster, self._cluster = self._cluster, None
        if client is not None:
            with contextlib.suppress(Exception):  # a client already cut off has nothing to unsubscribe
                # Else the scheduler sends this client the news of its own removal, and logs the failed write.
                for topic in (self._topic, "all"):
                    client.unsubscribe_topic(topic)
            await client.close()
        if cluster is not None:
            await cluster.close()
