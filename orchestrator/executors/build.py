"""The executors of one run, one per kind of work, built from configuration and closed when the run ends.

Each executor type is imported only when a configuration names it: a run whose cpu steps go to
Dask never imports the process pool, and one with no cpu step at all starts no process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.executors.event_loop import AsyncioExecutor
from orchestrator.executors.threads import ThreadExecutor
from orchestrator.model.values import KINDS, Kind

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrator.config import Config, ExecutorSpec
    from orchestrator.executors.base import Executor


def build_executor(spec: ExecutorSpec, sys_path: Sequence[str] = ()) -> Executor:
    if spec.type == "asyncio":
        return AsyncioExecutor()
    if spec.type == "threads":
        return ThreadExecutor("auto" if spec.workers == "auto" else spec.worker_count())
    if spec.type == "processes":
        from orchestrator.executors.processes.executor import ProcessExecutor

        return ProcessExecutor(spec, sys_path)
    from orchestrator.executors.dask import DaskExecutor

    return DaskExecutor(spec, sys_path)


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
