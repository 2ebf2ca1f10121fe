"""One command: 100,000 `for_each` items at concurrency 50, the engine's peak RSS beside a plain
asyncio worker pool (50 workers pulling from one iterator), each in a fresh subprocess.

    .venv/bin/python -m bench.fanout_memory [--items 100000] [--concurrency 50] [--repeat 3]
"""

from __future__ import annotations

import argparse

from bench.common import table
from bench.scale import SIDES, measure


def main() -> None:
    parser = argparse.ArgumentParser(description="Peak RSS of a 100k-item for_each: engine beside a worker pool.")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    found = {side: measure(side, args.items, args.concurrency, args.repeat) for side in SIDES}
    engine, pool = found["engine"], found["pool"]
    rows = [
        [label, f"{r['peak_mib']:.1f}", f"{r['base_mib']:.1f}", f"{r['delta_mib']:.1f}", f"{r['seconds'] * 1e3:.0f}"]
        for label, r in (("engine", engine), ("worker pool", pool))
    ]
    print(f"{args.items:,} no-op items at concurrency {args.concurrency}; RSS median, time best of {args.repeat} subprocesses")
    print(table(["side", "peak RSS MiB", "after imports MiB", "Δ MiB", "ms"], rows))
    print(f"engine / pool: peak RSS {engine['peak_mib'] / pool['peak_mib']:.2f}x, "
          f"Δ {engine['delta_mib'] - pool['delta_mib']:+.1f} MiB, time {engine['seconds'] / pool['seconds']:.1f}x")


if __name__ == "__main__":
    main()
