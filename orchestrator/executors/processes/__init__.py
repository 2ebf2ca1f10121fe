"""Asyncio-native process pool for CPU-bound steps.

``concurrent.futures.ProcessPoolExecutor`` marks the whole pool broken when one worker dies,
failing every call in flight, and it cannot cancel a running call. Here each worker runs one
call at a time, so a dead worker fails only its own call (:class:`WorkerDied`) and is replaced
on demand, and cancelling the awaiting task terminates the worker running the call.

The parent waits on each worker's pipe and process sentinel with ``loop.add_reader``: no thread
per call, no result-collector thread.

One module per concern:

* :mod:`.pool`: :class:`ProcessPool`, admission (a :class:`~orchestrator.executors.capacity.Capacity`
  slot per call) and the idle workers;
* :mod:`.handle`: one worker process and its pipe, as the event loop watches them;
* :mod:`.startup`: starting a worker process (helper thread, forkserver preload);
* :mod:`.protocol`: the parent's side of the pickle protocol, and :class:`RemoteError`;
* :mod:`.child`: the child side, what runs in the worker process;
* :mod:`.executor`: the pool as the `processes` executor type of a run.

The exports are imported on first use: every worker process imports :mod:`.child`, hence this
package, and needs none of the parent side (asyncio, the pool).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.executors.processes.pool import ProcessPool
    from orchestrator.executors.processes.protocol import RemoteError

__all__ = ["ProcessPool", "RemoteError"]

_EXPORTS = {
    "ProcessPool": "orchestrator.executors.processes.pool",
    "RemoteError": "orchestrator.executors.processes.protocol",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
