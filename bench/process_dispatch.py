"""Per-call overhead of ProcessPool against a bare ProcessPoolExecutor + loop.run_in_executor.

Two workloads, both on 2 workers with the same start method:

* ``--calls`` no-op calls (default 2,000) with ``--in-flight`` of them outstanding (default 16);
* 20 calls of ~20 ms of pure Python each.

Prints the wall time of each side and the ratio pool/bare (below 1: the pool is faster). Workers are
started before timing; each figure is the best of ``--repeat`` rounds. No assertions: it is a bench.

    .venv/bin/python bench/process_dispatch.py [--calls 2000] [--in-flight 16] [--start-method forkserver]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.workloads import calibrate, noop, spin
from orchestrator.executors.processes import ProcessPool

WORKERS = 2
CPU_CALLS = 20
CPU_SECONDS = 0.020

Submit = Callable[[Callable[..., object], tuple[object, ...]], Awaitable[object]]


async def in_flight(
    submit: Submit, fn: Callable[..., object], args: tuple[object, ...], calls: int, width: int
) -> float:
    """Wall time of `calls` calls with `width` of them outstanding at any time."""

    async def lane(count: int) -> None:
        for _ in range(count):
            await submit(fn, args)

    share, extra = divmod(calls, width)
    started = time.perf_counter()
    await asyncio.gather(*(lane(share + (i < extra)) for i in range(width)))
    return time.perf_counter() - started


async def best_of(
    repeat: int, submit: Submit, fn: Callable[..., object], args: tuple[object, ...], calls: int, width: int
) -> float:
    return min([await in_flight(submit, fn, args, calls, width) for _ in range(repeat)])


async def measure(args: argparse.Namespace, rounds: int) -> None:
    loop = asyncio.get_running_loop()
    async with ProcessPool(WORKERS, start_method=args.start_method) as pool:
        bare = ProcessPoolExecutor(WORKERS, mp_context=get_context(args.start_method))
        try:

            async def via_pool(fn: Callable[..., object], fn_args: tuple[object, ...]) -> object:
                return await pool.call(fn, fn_args)

            async def via_bare(fn: Callable[..., object], fn_args: tuple[object, ...]) -> object:
                return await loop.run_in_executor(bare, fn, *fn_args)

            # Start every worker on both sides before timing anything.
            for submit in (via_pool, via_bare):
                await in_flight(submit, noop, (), 4 * WORKERS, 2 * WORKERS)

            rows: list[tuple[str, float, float, int]] = []
            for label, fn, fn_args, calls, width in (
                (f"no-op x{args.calls}, {args.in_flight} in flight", noop, (), args.calls, args.in_flight),
                (f"cpu ~{CPU_SECONDS * 1e3:.0f} ms x{CPU_CALLS}", spin, (rounds,), CPU_CALLS, WORKERS * 2),
            ):
                pool_s = await best_of(args.repeat, via_pool, fn, fn_args, calls, width)
                bare_s = await best_of(args.repeat, via_bare, fn, fn_args, calls, width)
                rows.append((label, pool_s, bare_s, calls))
        finally:
            bare.shutdown()

    print(f"{WORKERS} workers, start method {args.start_method}, best of {args.repeat}")
    print(f"{'workload':32} {'ProcessPool':>18} {'PPE+run_in_executor':>22} {'pool/bare':>10}")
    for label, pool_s, bare_s, calls in rows:
        pool_col = f"{pool_s:.3f} s {pool_s / calls * 1e6:5.0f} µs"
        bare_col = f"{bare_s:.3f} s {bare_s / calls * 1e6:5.0f} µs"
        print(f"{label:32} {pool_col:>18} {bare_col:>22} {pool_s / bare_s:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--start-method", default="forkserver")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rounds = calibrate(CPU_SECONDS)
    asyncio.run(measure(args, rounds))


# The guard matters: forkserver and spawn workers import this module as __mp_main__.
if __name__ == "__main__":
    main()
