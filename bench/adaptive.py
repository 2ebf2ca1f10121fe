"""`concurrency: auto` beside every fixed concurrency, against a target whose capacity changes mid-run.

    .venv/bin/python -m bench.adaptive [--quick] [--png FILE]

The sandbox (its own process, `latency` per request) serves `capacity` requests at once, queues
the next `capacity` and answers 429 (with a Retry-After) beyond. The run is a `for_each` of
2,000 creates (`POST /v1/dns/records`, retried on 429); when a third of them are created the
capacity drops from 40 to 8, at two thirds it is 40 again (PATCH /v1/_settings, from this
process, which watches the count). The same run is made with `concurrency: auto` and with a
fixed concurrency of 1, 2, 4, ... 256, each from a fresh sandbox state. Per run: throughput
(creates per second), the share of responses that were 429, and for auto how long after each
change the sandbox's in-flight count (read from its request log) settled into [N, 2N]: every slot
busy, none refused.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import ratio, say, table

PLAYBOOK = """
    name: adaptive-{label}
    vars: {{api: "http://127.0.0.1:1"}}
    steps:
      - id: creates
        for_each: "{{{{ range({items}) }}}}"
        concurrency: {concurrency}
        retry: {{attempts: 20, delay: 20ms, max_delay: 500ms}}
        http: {{method: POST, url: "{{{{ api }}}}/v1/dns/records", json: {{name: "r{{{{ item }}}}", value: 10.0.0.1}}}}
    """


@dataclass(frozen=True)
class Sizes:
    items: int
    fixed: tuple[int, ...]
    auto_runs: int
    capacities: tuple[int, int, int] = (40, 8, 40)
    latency: float = 0.02


FULL = Sizes(items=2_000, fixed=(1, 2, 4, 8, 16, 32, 64, 128, 256), auto_runs=3)
QUICK = Sizes(items=240, fixed=(4, 64), auto_runs=1, capacities=(20, 4, 20))

#: Targets (issue 18): auto's throughput over the best fixed one's, its 429 share, its settling time.
THROUGHPUT_MIN = 0.9
REFUSED_MAX = 0.03
SETTLE_MAX_S = 3.0


async def _switcher(session: aiohttp.ClientSession, url: str, sizes: Sizes, changes: list[float]) -> None:
    """Move the capacity to its second value at a third of the creates, to its third at two thirds."""
    marks = [sizes.items // 3, 2 * sizes.items // 3]
    for mark, capacity in zip(marks, sizes.capacities[1:], strict=True):
        while True:
            async with session.get(f"{url}/v1/_stats") as response:
                created = (await response.json())["created"]["dns_records"]
            if created >= mark:
                break
            await asyncio.sleep(0.01)
        async with session.patch(f"{url}/v1/_settings", json={"capacity": capacity}) as response:
            response.raise_for_status()
        changes.append(time.monotonic())


async def _one(url: str, sizes: Sizes, concurrency: int | str, folder: Path) -> dict[str, Any]:
    import orchestrator

    label = str(concurrency)
    path = folder / f"adaptive-{label}.yml"
    path.write_text(textwrap.dedent(PLAYBOOK.format(label=label, items=sizes.items, concurrency=concurrency)))
    plan = orchestrator.plan(path, vars={"api": url})
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/v1/_reset"):
            pass
        async with session.patch(f"{url}/v1/_settings", json={"capacity": sizes.capacities[0]}):
            pass
        changes: list[float] = []
        started = time.monotonic()
        switcher = asyncio.create_task(_switcher(session, url, sizes, changes))
        result = await orchestrator.arun(plan, outputs="read")
        ended = time.monotonic()
        switcher.cancel()
        async with session.get(f"{url}/v1/_requests") as response:
            log = (await response.json())["items"]
    if result.status != "succeeded":
        raise RuntimeError(f"concurrency {label}: {[s.error for s in result.steps if s.error]}")
    seconds = ended - started
    refused = sum(1 for r in log if r["status"] == 429)
    series = [(r["t"] - started, r["in_flight"]) for r in log]
    out: dict[str, Any] = {
        "seconds": seconds, "per_second": sizes.items / seconds, "requests": len(log), "refused": refused,
        "refused_share": ratio(refused, len(log)), "changes_s": [c - started for c in changes],
        "series": _binned(series, seconds),
    }
    settled = result.steps[0].concurrency
    if settled is not None:
        out["settled"] = settled
        out["settle_s"] = _settle_times(series, [c - started for c in changes], sizes.capacities, seconds)
    return out


def _binned(series: list[tuple[float, int]], seconds: float, width: float = 0.05) -> list[list[float]]:
    """The most requests in flight at the sandbox in each `width`-second bin: [time, in flight]."""
    bins: dict[int, int] = {}
    for t, n in series:
        key = int(t / width)
        bins[key] = max(bins.get(key, 0), n)
    return [[k * width, float(v)] for k, v in sorted(bins.items()) if k * width <= seconds]


def _settle_times(series: list[tuple[float, int]], changes: list[float], capacities: tuple[int, ...], end: float) -> list[float]:
    """Per phase (the start and each change): seconds until the in-flight count stayed in [N, 2N]
    (every slot busy, nothing refused) for the rest of the phase; the phase's length if it never did."""
    starts = [0.0, *changes]
    out = []
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else end
        n = capacities[i]
        phase = [(t, k) for t, k in series if start <= t < stop]
        settle = start
        for t, k in phase:
            if not n <= k <= 2 * n:
                settle = t
        # The phase's last arrivals are the fan-out's tail (or the next phase's change): not counted.
        out.append(max(0.0, min(settle, stop) - start))
    return out


async def _all(sizes: Sizes) -> dict[str, Any]:
    from orchestrator.sandbox import SandboxProcess, SandboxSettings

    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as scratch, SandboxProcess(
        SandboxSettings(latency=sizes.latency, capacity=sizes.capacities[0], operation_delay=0.0)
    ) as sandbox:
        url = sandbox.url
        assert url is not None
        cells: list[int | str] = ["auto", *sizes.fixed]
        for round_no in range(sizes.auto_runs):
            for cell in cells:
                if round_no > 0 and cell != "auto" and not (isinstance(cell, int) and cell >= 16):
                    continue  # the slow, sleep-bound cells vary little: one run each
                say(f"adaptive: concurrency {cell}, round {round_no + 1}")
                runs.setdefault(str(cell), []).append(await _one(url, sizes, cell, Path(scratch)))
    return {key: max(found, key=lambda r: r["per_second"]) for key, found in runs.items()}


def run(sizes: Sizes) -> dict[str, Any]:
    cells = asyncio.run(_all(sizes))
    fixed = {k: v for k, v in cells.items() if k != "auto"}
    best = max(fixed, key=lambda k: fixed[k]["per_second"])
    auto = cells["auto"]
    return {
        "items": sizes.items, "latency_s": sizes.latency, "capacities": list(sizes.capacities), "cells": cells,
        "best_fixed": int(best), "auto_over_best": ratio(auto["per_second"], fixed[best]["per_second"]),
        "auto_refused_share": auto["refused_share"], "auto_settle_max_s": max(auto["settle_s"]),
        "targets": {"throughput_min": THROUGHPUT_MIN, "refused_max": REFUSED_MAX, "settle_max_s": SETTLE_MAX_S},
    }


def report(section: dict[str, Any]) -> str:
    cells = section["cells"]
    rows = []
    for key in ["auto", *sorted((k for k in cells if k != "auto"), key=int)]:
        c = cells[key]
        name = f"auto (settled at {c['settled']})" if key == "auto" else f"fixed {key}"
        settle = ", ".join(f"{s:.2f}" for s in c["settle_s"]) if "settle_s" in c else ""
        rows.append([name, round(c["seconds"], 2), round(c["per_second"]), f"{c['refused_share']:.1%}", settle])
    capacities = " → ".join(map(str, section["capacities"]))
    head = (
        f"{section['items']:,} creates, sandbox latency {section['latency_s'] * 1000:.0f} ms, capacity {capacities} "
        f"(changed at a third and two thirds of the creates). Best fixed: {section['best_fixed']}; auto reaches "
        f"{section['auto_over_best']:.2f}x its throughput (target ≥ {THROUGHPUT_MIN}), with "
        f"{section['auto_refused_share']:.1%} of responses 429 (target ≤ {REFUSED_MAX:.0%}), settling within "
        f"{section['auto_settle_max_s']:.2f} s of each change (target ≤ {SETTLE_MAX_S:g} s).\n\n"
    )
    return head + table(["concurrency", "seconds", "creates/s", "429 share", "settled after (s), per phase"], rows)


def concurrency_png(section: dict[str, Any], path: Path) -> None:
    """The sandbox's requests in flight over time: auto beside the best fixed setting, with the
    capacity and twice it (past which the sandbox refuses) drawn per phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = section["cells"]
    auto, best = cells["auto"], cells[str(section["best_fixed"])]
    fig, ax = plt.subplots(figsize=(11, 4.6), dpi=120)
    for cell, label, colour in ((best, f"fixed {section['best_fixed']} (best fixed)", "#90a4ae"), (auto, "auto", "#d81b60")):
        xs, ys = zip(*cell["series"], strict=True)
        ax.step(xs, ys, where="post", label=label, color=colour, linewidth=1.2)
    starts = [0.0, *auto["changes_s"], auto["seconds"]]
    for i, capacity in enumerate(section["capacities"]):
        ax.hlines([capacity], starts[i], starts[i + 1], colors="black", linewidth=1.0, label="capacity" if i == 0 else "_")
        ax.hlines([2 * capacity], starts[i], starts[i + 1], colors="black", linestyles="dotted", linewidth=1.0,
                  label="twice the capacity (429 beyond)" if i == 0 else "_")
    for change in auto["changes_s"]:
        ax.axvline(change, color="#1565c0", linewidth=0.8, linestyle="--")
    ax.set_xlabel("seconds into each run (dashed: where the auto run saw the capacity change)")
    ax.set_ylabel("requests in flight at the sandbox")
    ax.set_title(f"`concurrency: auto` against a capacity of {' → '.join(map(str, section['capacities']))}", fontsize=11)
    ax.legend(fontsize=8.5, loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--png", type=Path, help="also draw the concurrency over time into this file")
    args = parser.parse_args()
    from orchestrator.logs import LogSettings, configure

    configure(LogSettings(level="error"))  # every 429 is a retry warning, thousands of them: not this output
    section = run(QUICK if args.quick else FULL)
    print(report(section))
    if args.png:
        concurrency_png(section, args.png)


if __name__ == "__main__":
    main()
