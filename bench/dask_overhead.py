"""Per-call overhead of the dask executor against Dask's own ``client.map`` + ``gather``.

Both sides run ``--calls`` no-op calls (``abs(n)``: a builtin, so nothing is imported on the workers) (default 2,000) on the same cluster (a LocalCluster on
127.0.0.1 started here: 2 worker processes, one thread each) with ``--in-flight`` of them
outstanding (default 100): Dask's side maps that many at a time and gathers them, the executor's
side keeps that many of its own calls going, as a `for_each` step with that concurrency does.
Prints each side's time per call and the ratio executor/Dask (target: at most 1.2 at 100 in flight).
Each figure is the best of ``--repeat`` rounds. No assertions: it is a bench.

    .venv/bin/python bench/dask_overhead.py [--calls 2000] [--in-flight 100] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from orchestrator.config import ExecutorSpec
from orchestrator.executors.base import Invocation

TARGET = 1.2


async def dask_side(client: object, calls: int, width: int) -> float:
    """Seconds for `calls` no-ops through client.map + gather, `width` at a time."""
    started = time.perf_counter()
    for first in range(0, calls, width):
        futures = client.map(abs, range(first, min(first + width, calls)), pure=False)  # type: ignore[attr-defined]
        await client.gather(futures)  # type: ignore[attr-defined]
    return time.perf_counter() - started


async def executor_side(executor: object, calls: int, width: int) -> float:
    """Seconds for `calls` no-ops through DaskExecutor.run, `width` outstanding at any time."""
    call = Invocation(abs, (1,))
    context = {"run_id": "bench", "step": "noop", "kind": "cpu", "executor": "dask"}

    async def lane(count: int) -> None:
        for _ in range(count):
            await executor.run(call, context)  # type: ignore[attr-defined]

    share, extra = divmod(calls, width)
    started = time.perf_counter()
    await asyncio.gather(*(lane(share + (i < extra)) for i in range(width)))
    return time.perf_counter() - started


async def measure(calls: int, width: int, repeat: int) -> dict[str, float]:
    from distributed import Client, LocalCluster

    from orchestrator.executors.dask import DaskExecutor

    async with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None, asynchronous=True,
    ) as cluster, Client(cluster, asynchronous=True) as client:  # type: ignore[no-untyped-call]
        executor = DaskExecutor(ExecutorSpec(type="dask", address=cluster.scheduler_address))
        try:
            await executor_side(executor, width, width)  # connect and warm both sides up
            await dask_side(client, width, width)
            ours, theirs = [], []
            for _ in range(repeat):  # interleaved, so both sides see the same machine
                theirs.append(await dask_side(client, calls, width))
                ours.append(await executor_side(executor, calls, width))
        finally:
            await executor.aclose()
    per_dask, per_ours = min(theirs) / calls * 1e6, min(ours) / calls * 1e6
    return {"calls": calls, "in_flight": width, "dask_us_per_call": per_dask, "executor_us_per_call": per_ours,
            "ratio": per_ours / per_dask}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="200 calls, one round: checks that it runs")
    args = parser.parse_args(argv)
    calls, repeat = (200, 1) if args.quick else (args.calls, args.repeat)
    result = asyncio.run(measure(calls, args.in_flight, repeat))
    verdict = "holds" if result["ratio"] <= TARGET else "missed"
    print(f"dask overhead: {result['calls']} no-op calls, {result['in_flight']} in flight, 2 workers")
    print(f"  client.map + gather  {result['dask_us_per_call']:8.0f} µs per call")
    print(f"  DaskExecutor.run     {result['executor_us_per_call']:8.0f} µs per call")
    print(f"  ratio executor/dask  {result['ratio']:8.2f}  (target ≤ {TARGET}: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
