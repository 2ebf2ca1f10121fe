"""Fixtures of the engine tests: a Dask cluster shared by the whole session."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """The address of a Dask LocalCluster on 127.0.0.1 (two worker processes, one thread each),
    started on first use and closed when the session ends."""
    from distributed import LocalCluster

    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
    )
    try:
        address: str = cluster.scheduler_address
        yield address
    finally:
        cluster.close()
