"""Reaching a Dask cluster from configuration: an existing scheduler (`address`), a LocalCluster on
127.0.0.1 (``address: local``), or a cluster class started with its options (`cluster`, `options`,
`adapt`: ``distributed.LocalCluster``, ``dask_jobqueue.SLURMCluster``, ``dask_kubernetes``'s
``KubeCluster``...).

Connecting to an existing scheduler is bounded by `connect_timeout` (Dask's own default is 30 s,
retried with backoff). A cluster started here gets ``allowed-failures: 0``: its scheduler never runs
a task a second time after the worker running it died, so the death reaches the step (its retry
policy decides) instead of being hidden.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ExecutorUnavailable

if TYPE_CHECKING:
    from orchestrator.config import ExecutorSpec

_CLUSTER_CONFIG = {"distributed.scheduler.allowed-failures": 0}


async def open_client(spec: ExecutorSpec) -> tuple[Any, Any]:
    """A connected asynchronous Client and the cluster started for it (None for `address`)."""
    try:
        import dask
        from distributed import Client
    except ImportError:
        raise ExecutorUnavailable("the dask executor needs the `dask` extra: pip install 'orchestrator[dask]'") from None
    if spec.address and spec.address != "local":
        return await _connect(Client, spec.address, spec.connect_timeout), None
    with dask.config.set(_CLUSTER_CONFIG):
        cluster = await _start_cluster(spec)
    try:
        return await _connect(Client, cluster, spec.connect_timeout), cluster
    except BaseException:
        await cluster.close()
        raise


async def _connect(client_class: Any, address: Any, timeout: float) -> Any:
    where = getattr(address, "scheduler_address", address)
    try:
        # Dask's `timeout` bounds its connection attempts; wait_for bounds the handshake after them too.
        return await asyncio.wait_for(client_class(address, asynchronous=True, timeout=timeout), timeout + 1)
    except (OSError, TimeoutError) as exc:
        raise ExecutorUnavailable(
            f"cannot reach the Dask scheduler at {where} within {timeout:g}s ({type(exc).__name__}: {exc}); "
            "check `address` in the configuration and that the scheduler is running"
        ) from None


async def _start_cluster(spec: ExecutorSpec) -> Any:
    if spec.cluster is None:  # address: local, one worker process per core unless `workers` says
        from distributed import LocalCluster

        return await LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=spec.worker_count(), threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=_dashboard_address(), asynchronous=True,
        )
    module_name, _, name = spec.cluster.replace(":", ".").rpartition(".")
    try:
        cluster_class = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ExecutorUnavailable(f"cannot import the Dask cluster class {spec.cluster!r}: {exc}") from None
    try:
        cluster = await cluster_class(**spec.options, asynchronous=True)
    except TypeError as exc:
        raise ExecutorUnavailable(f"cannot start {spec.cluster} with options {spec.options}: {exc}") from None
    if spec.adapt is not None:
        cluster.adapt(**spec.adapt)
    return cluster


def _dashboard_address() -> str | None:
    """A free port on 127.0.0.1 for the dashboard when bokeh (its requirement) is installed."""
    return "127.0.0.1:0" if importlib.util.find_spec("bokeh") is not None else None


def dashboard_link(client: Any, identity: dict[str, Any]) -> str | None:
    """The dashboard's URL, or None when the scheduler serves none."""
    if "dashboard" not in identity.get("services", {}):
        return None
    try:
        return str(client.dashboard_link)
    except Exception:  # a scheduler that describes itself differently: no link
        return None
