"""Many calls in few scheduler round trips: when finished results are fetched, and what a fan-out
costs the scheduler in gathers (counted from the scheduler's own `all` event topic)."""

from __future__ import annotations

import textwrap
import time
from typing import TYPE_CHECKING

import pytest

import orchestrator
from orchestrator.config import loads_config
from orchestrator.executors.dask.batching import fetch_now
from tests.dask.conftest import config_text

if TYPE_CHECKING:
    from pathlib import Path

    from tests.dask.cluster import Cluster


@pytest.mark.parametrize(
    ("ready", "in_flight", "unstarted", "now"),
    [
        pytest.param(1, 1, 0, True, id="a lone call is fetched as soon as it finishes"),
        pytest.param(1, 4, 3, True, id="with four or fewer in flight, the first result is enough"),
        pytest.param(24, 100, 70, False, id="100 in flight, others still to start: 24 results wait"),
        pytest.param(25, 100, 70, True, id="100 in flight: a quarter of them go together"),
        pytest.param(1, 100, 0, True, id="nothing waits to start: a worker would idle, so fetch now"),
    ],
)
def test_a_result_waits_for_company_only_while_the_cluster_has_calls_of_ours_to_start(
    ready: int, in_flight: int, unstarted: int, now: bool,
) -> None:
    """Holding a result back costs no throughput while workers have our calls to start next."""
    assert fetch_now(ready, in_flight, unstarted) is now


SQUARE = """\
def square(n):
    return n * n
"""


def test_a_200_item_fan_out_at_concurrency_100_fetches_its_results_in_few_gathers(two_workers: Cluster, tmp_path: Path) -> None:
    """One gather per call would be 200; batches of a quarter of the calls in flight need about 8, a
    loaded machine (results arriving slower than the hold time) a few more. Results are all there, in order."""
    from distributed import Client

    (tmp_path / "work_batched.py").write_text(SQUARE)
    path = tmp_path / "fan.yml"
    path.write_text(textwrap.dedent("""\
        name: batched
        steps:
          - id: squares
            kind: cpu
            for_each: "{{ range(200) }}"
            concurrency: 100
            call: work_batched:square
            with: {n: "{{ item }}"}
        """))
    plan = orchestrator.plan(path, config=loads_config(config_text(two_workers.address)))
    started = time.time()
    result = orchestrator.run(plan)
    assert result.step("squares").output == [n * n for n in range(200)]
    with Client(two_workers.address, timeout=10) as client:  # type: ignore[no-untyped-call]
        gathers = [e for t, e in client.get_events("all") if t >= started and e.get("action") == "gather"]
    assert sum(e["count"] for e in gathers) == 200
    assert len(gathers) <= 50, [e["count"] for e in gathers]
