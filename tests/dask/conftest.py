"""One Dask cluster per test module, started as separate processes, as a user starts one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.dask.cluster import Cluster

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """`dask scheduler` and two `dask worker` processes (one thread each) on 127.0.0.1, killed at the end."""
    running = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        running.start_workers(2)
        running.wait_for_workers(2)
        yield running
    finally:
        running.close()


@pytest.fixture
def two_workers(cluster: Cluster) -> Cluster:
    """The module's cluster with its two workers back (a test before may have killed some)."""
    missing = 2 - len(cluster.workers)
    if missing > 0:
        cluster.start_workers(missing)
    cluster.wait_for_workers(2)
    return cluster


def config_text(address: str, blocking: str = "threads", **extra: object) -> str:
    """A configuration file that sends cpu work (and, with blocking="dask", blocking work) to `address`."""
    options = "".join(f", {k}: {v}" for k, v in extra.items())
    dask = f'{{type: dask, address: "{address}"{options}}}'
    blocking_spec = dask if blocking == "dask" else "{type: threads, workers: 32}"
    return f"executors:\n  non-blocking: {{type: asyncio}}\n  blocking: {blocking_spec}\n  cpu: {dask}\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path
