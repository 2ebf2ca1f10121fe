"""A Dask cluster as an executor, for cpu and blocking work that outgrows one machine.

One module per concern:

* :mod:`.executor`: :class:`DaskExecutor`, the `dask` executor type of a run: the failure model
  (a dead worker, no workers, a cancelled call), log lines coming home;
* :mod:`.batching`: many calls in few scheduler round trips (submissions and result fetches);
* :mod:`.connect`: reaching or starting the cluster from configuration;
* :mod:`.shipping`: which of the playbook's modules are sent to the workers, packed by content;
* :mod:`.worker`: what runs on a worker (each call, its log forwarding, the code plugin).

The exports are imported on first use: every worker imports :mod:`.worker`, hence this package,
and needs none of the client side. docs/scale-out.md is the user's view of all of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.executors.dask.executor import DaskExecutor, DaskWorkerDied

__all__ = ["DaskExecutor", "DaskWorkerDied"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("orchestrator.executors.dask.executor"), name)
    globals()[name] = value
    return value
