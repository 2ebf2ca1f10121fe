"""`ProcessExecutor`: the process pool as the `processes` executor type of a run.

The pool is configured like the parent's logging (each worker runs the same structlog setup), and
its workers get the playbook's folder on their `sys.path`, since unpickling a `call:` callable
imports its module again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.executors.processes.pool import ProcessPool
from orchestrator.logs import active_settings, child_initializer

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from orchestrator.config import ExecutorSpec
    from orchestrator.executors.base import Invocation


class ProcessExecutor:
    """Runs each call in a worker process of one `ProcessPool`, the log context sent along."""

    name = "processes"

    def __init__(self, spec: ExecutorSpec, sys_path: Sequence[str]) -> None:
        self.pool = ProcessPool(
            spec.worker_count(), start_method=spec.start_method, initializer=child_initializer,
            initargs=(active_settings(),), sys_path=sys_path,
        )

    async def run(self, call: Invocation, log_context: Mapping[str, Any]) -> Any:
        return await self.pool.call(call.fn, call.args, call.kwargs, log_context=log_context)

    async def aclose(self) -> None:
        await self.pool.aclose()
