"""The executors of one run, built from configuration and closed when the run ends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.config import Config, ExecutorSpec
from orchestrator.executors.base import Executor, Invocation
from orchestrator.executors.event_loop import AsyncioExecutor
from orchestrator.executors.threads import ThreadExecutor
from orchestrator.logs import active_settings, child_initializer
from orchestrator.model.values import KINDS, Kind


class ProcessExecutor:
    """The process pool behind the `processes` executor type."""

    name = "processes"

    def __init__(self, spec: ExecutorSpec, sys_path: Sequence[str]) -> None:
        from orchestrator.executors.processes import ProcessPool

        self.pool = ProcessPool(
            spec.worker_count(), start_method=spec.start_method, initializer=child_initializer,
            initargs=(active_settings(),), sys_path=sys_path,
        )

    async def run(self, call: Invocation, log_context: Mapping[str, Any]) -> Any:
        return await self.pool.call(call.fn, call.args, call.kwargs, log_context=log_context)

    async def aclose(self) -> None:
        await self.pool.aclose()


def build_executor(spec: ExecutorSpec, sys_path: Sequence[str] = ()) -> Executor:
    if spec.type == "asyncio":
        return AsyncioExecutor()
    if spec.type == "threads":
        return ThreadExecutor(spec.worker_count())
    if spec.type == "processes":
        return ProcessExecutor(spec, sys_path)
    from orchestrator.executors.dask import DaskExecutor

    assert spec.address is not None
    return DaskExecutor(spec.address, None if spec.workers == "auto" else spec.workers)


class Executors:
    """One executor per kind of work. Nothing starts until a step uses it."""

    def __init__(self, config: Config, sys_path: Sequence[str] = ()) -> None:
        self.by_kind: dict[Kind, Executor] = {k: build_executor(config.executor_for(k), sys_path) for k in KINDS}

    def __getitem__(self, kind: Kind) -> Executor:
        return self.by_kind[kind]

    async def aclose(self) -> None:
        errors: list[BaseException] = []
        for executor in self.by_kind.values():
            try:
                await executor.aclose()
            except Exception as exc:  # close the others anyway
                errors.append(exc)
        if errors:
            raise errors[0]
