"""`for_each` over many no-op coroutine items: time and peak RSS of the engine beside a plain asyncio
worker pool (W workers pulling from one iterator, outputs kept in a list as the engine keeps them).

Each (side, size) runs in a fresh subprocess, so its peak RSS is its own (VmHWM, see `_max_rss_kib`). Both sides
import the same modules and plan the same playbook before the baseline RSS is read, so they start
level; the figures are the process's peak RSS (primary: what the machine must have) and the peak
minus that baseline (what the run itself added).

    .venv/bin/python -m bench.scale [--quick]
    .venv/bin/python -m bench.scale --child engine|pool ITEMS [--concurrency 50]   (one measurement, JSON)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.common import ROOT, ratio, say, table, verdict

CONCURRENCY = 50
SIDES = ("engine", "pool")
TARGET_PEAK_GROWTH_MAX = 1.5


@dataclass(frozen=True)
class Sizes:
    items: tuple[int, ...]
    repeat: int


FULL = Sizes((1_000, 10_000, 100_000), repeat=3)
QUICK = Sizes((500, 1_000, 5_000), repeat=1)

PLAYBOOK = (
    "name: scale\nsteps:\n  - id: work\n    kind: non-blocking\n"
    '    for_each: "{{ range(n) }}"\n    concurrency: {concurrency}\n    call: bench.workloads:noop_async\n'
)


def _max_rss_kib() -> int:
    """This process's peak RSS in KiB. On Linux, `ru_maxrss` carries over across fork + exec, so a
    child started by a large parent reports the parent's size: read the high-water mark of this
    process image (VmHWM) instead, and fall back to `ru_maxrss` where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


async def worker_pool(n: int, concurrency: int) -> list[Any]:
    """The plain baseline: `concurrency` workers pulling item indexes from one shared iterator."""
    from bench.workloads import noop_async

    outputs: list[Any] = [None] * n
    pending = iter(range(n))

    async def worker() -> None:
        for index in pending:  # no await between next() calls: safe to share
            await noop_async()
            outputs[index] = None  # what the no-op returned, kept as the engine keeps outputs

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, n)):
            group.create_task(worker())
    return outputs


def child(side: str, n: int, concurrency: int) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    import orchestrator
    from orchestrator.logs import LogSettings, configure

    configure(LogSettings(level="warning"))
    text = PLAYBOOK.replace("{concurrency}", str(concurrency))
    plan = orchestrator.plan(orchestrator.loads(text, file=str(ROOT / "bench-scale.yml")), vars={"n": n})
    base = _max_rss_kib()
    started = time.perf_counter()
    if side == "engine":
        result = asyncio.run(orchestrator.arun(plan))
        if result.status != "succeeded" or len(result.steps[0].output) != n:
            raise SystemExit(f"engine run {result.status}: {result.steps[0].error}")
    else:
        if len(asyncio.run(worker_pool(n, concurrency))) != n:
            raise SystemExit("worker pool lost items")
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "rss_base_kib": base, "rss_peak_kib": _max_rss_kib()}


def measure(side: str, n: int, concurrency: int, repeat: int) -> dict[str, Any]:
    """`repeat` fresh subprocesses: time is the best, RSS figures the median."""
    runs = []
    for _ in range(repeat):
        argv = [sys.executable, "-m", "bench.scale", "--child", side, str(n), "--concurrency", str(concurrency)]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[1:])} exited {done.returncode}:\n{done.stderr}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    peak = statistics.median(r["rss_peak_kib"] for r in runs) / 1024
    base = statistics.median(r["rss_base_kib"] for r in runs) / 1024
    delta = statistics.median(r["rss_peak_kib"] - r["rss_base_kib"] for r in runs) / 1024
    return {"seconds": min(r["seconds"] for r in runs), "peak_mib": peak, "base_mib": base, "delta_mib": delta, "runs": repeat}


def run(sizes: Sizes, concurrency: int = CONCURRENCY) -> dict[str, Any]:
    """Every size on both sides; returns the JSON section."""
    rows: dict[str, Any] = {}
    for n in sizes.items:
        say(f"scale: {n:,} items, {sizes.repeat} subprocess(es) per side")
        engine, pool = (measure(side, n, concurrency, sizes.repeat) for side in SIDES)
        rows[str(n)] = {"engine": engine, "pool": pool, "time_ratio": ratio(engine["seconds"], pool["seconds"])}
    large, previous = (rows[str(n)] for n in sizes.items[-1:-3:-1])
    growth = {
        "from_items": sizes.items[-2], "to_items": sizes.items[-1],
        **{f"{side}_peak_ratio": ratio(large[side]["peak_mib"], previous[side]["peak_mib"]) for side in SIDES},
        # A ratio of deltas exists only when the smaller one is above ru_maxrss's resolution.
        **{f"{side}_delta_ratio": ratio(large[side]["delta_mib"], previous[side]["delta_mib"])
           for side in SIDES if previous[side]["delta_mib"] > 0},
        **{f"{side}_bytes_per_item": (large[side]["delta_mib"] - previous[side]["delta_mib"]) * 2**20
           / (sizes.items[-1] - sizes.items[-2]) for side in SIDES},
        "target_engine_peak_ratio_max": TARGET_PEAK_GROWTH_MAX,
    }
    return {"concurrency": concurrency, "repeat": sizes.repeat, "time": "best", "rss": "median", "sizes": rows, "growth": growth}


def report(section: dict[str, Any]) -> str:
    """The section as Markdown."""
    rows = []
    for n, row in section["sizes"].items():
        e, p = row["engine"], row["pool"]
        rows.append([f"{int(n):,}", f"{e['seconds'] * 1e3:.0f}", f"{p['seconds'] * 1e3:.0f}", f"{row['time_ratio']:.2f}x",
                     f"{e['peak_mib']:.1f}", f"{p['peak_mib']:.1f}", f"{e['delta_mib']:.1f}", f"{p['delta_mib']:.1f}"])
    g = section["growth"]
    ok = g["engine_peak_ratio"] <= g["target_engine_peak_ratio_max"]
    return (
        table(["items", "engine ms", "pool ms", "engine / pool", "engine peak RSS MiB", "pool peak RSS MiB",
               "engine Δ MiB", "pool Δ MiB"], rows)
        + f"\n\nGrowth from {g['from_items']:,} to {g['to_items']:,} items: engine peak RSS "
        f"{g['engine_peak_ratio']:.2f}x (target ≤ {g['target_engine_peak_ratio_max']}: {verdict(ok)}), pool peak RSS "
        f"{g['pool_peak_ratio']:.2f}x; engine Δ {_delta(g, 'engine')}, pool Δ {_delta(g, 'pool')} "
        f"(a ratio of small deltas is noisy; the peak is the primary figure). Marginal memory per item: engine "
        f"{g['engine_bytes_per_item']:.0f} B, pool {g['pool_bytes_per_item']:.0f} B.\n\n"
        f"Concurrency {section['concurrency']}; each figure from {section['repeat']} fresh subprocess(es) per cell: "
        "time the best, RSS the median. Peak RSS is the subprocess's high-water mark (VmHWM: unlike `ru_maxrss`, "
        "it does not inherit the parent's size across fork + exec); Δ is the peak minus the high-water mark "
        "after imports and planning, before the run."
    )


def _delta(growth: dict[str, Any], side: str) -> str:
    value = growth.get(f"{side}_delta_ratio")
    return f"{value:.2f}x" if value is not None else "n/a (the smaller Δ is 0)"


def main() -> None:
    parser = argparse.ArgumentParser(description="for_each at scale: time and peak RSS, engine beside a worker pool.")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "ITEMS"))
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.child:
        side, items = args.child
        if side not in SIDES:
            parser.error(f"SIDE must be one of {', '.join(SIDES)}")
        print(json.dumps(child(side, int(items), args.concurrency)))
        return
    print(report(run(QUICK if args.quick else FULL, args.concurrency)))


if __name__ == "__main__":
    main()
