"""The engine's own cost: per no-op `for_each` item and per no-op step, on each executor, beside the
bare asyncio / concurrent.futures code doing the same dispatch.

Per-item (per-step) cost is a slope: (T(large) - T(small)) / (large - small), each T the best of
`repeat` interleaved runs. The slope leaves out what a run pays once (planning, pool start-up,
loop creation), on both sides alike; the engine's one-off cost is reported separately.

The engine runs with its timeline and tag advisor on, as users run it. What they cost (target: 5%
at most) is measured apart, in rounds of the same four runs (large and small, the timeline on and
off), each on-off pair back to back and in alternating order (on first in even rounds, off first in
odd ones), so that neither side always runs after the other (a pool's worker processes still
exiting, a warmer cache); the figure is the median of the rounds' on / off slope ratios, with its 95%
confidence interval. One run on this machine varies by about 10% (a pool's runs more: three
processes share two cores), so one round's ratio by 15%: a cost of a few per cent needs many rounds,
and rounds are added until the interval is narrow enough (`Sizes.timeline_rounds`). The small runs
are past the timeline's traced head (its first `HEAD` items or single-call steps, timed in full),
so that cost, paid once per step or run, is reported apart from the slope.

    .venv/bin/python -m bench.overhead [--quick] [--profile asyncio|threads|processes]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import math
import os
import pstats
import statistics
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any

from bench import workloads
from bench.common import ROOT, Cell, measure_rounds, ratio, say, table, timed_run, verdict

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


@dataclass(frozen=True)
class Lane:
    """One executor: how the engine's step is tagged, and the bare code it is compared with."""

    executor: str  # asyncio | threads | processes
    kind: str
    concurrency: int
    baseline: str
    target_max: float


LANES = (
    Lane("asyncio", "non-blocking", 100, "asyncio.gather + Semaphore", 3.0),
    Lane("threads", "blocking", 32, "run_in_executor(ThreadPoolExecutor(32)) + Semaphore", 1.3),
    Lane("processes", "cpu", 16, "run_in_executor(ProcessPoolExecutor(2)) + Semaphore", 1.3),
)


@dataclass(frozen=True)
class Sizes:
    items: dict[str, int]  # the large `for_each`, per executor
    steps: int
    repeat: int
    #: Rounds of a timeline comparison: at least the first, at most the second (see `timeline_cost`).
    timeline_rounds: tuple[int, int]


FULL = Sizes({"asyncio": 10_000, "threads": 5_000, "processes": 2_000}, steps=1_000, repeat=7, timeline_rounds=(61, 201))
QUICK = Sizes({"asyncio": 1_000, "threads": 500, "processes": 200}, steps=40, repeat=1, timeline_rounds=(2, 2))
SMALL_STEPS = 10


def _target(lane: Lane) -> Callable[..., Any]:
    return workloads.noop_async if lane.executor == "asyncio" else workloads.noop


def for_each_text(lane: Lane) -> str:
    return (
        f"name: overhead {lane.executor} for_each\nsteps:\n  - id: work\n    kind: {lane.kind}\n"
        f'    for_each: "{{{{ range(n) }}}}"\n    concurrency: {lane.concurrency}\n'
        f"    call: bench.workloads:{_target(lane).__name__}\n"
    )


def steps_text(lane: Lane, count: int) -> str:
    steps = "".join(
        f"  - {{id: s{i}, kind: {lane.kind}, call: 'bench.workloads:{_target(lane).__name__}'}}\n" for i in range(count)
    )
    return f"name: overhead {lane.executor} steps\nsteps:\n{steps}"


def _plan(text: str, n: int, config: Any) -> Any:
    import orchestrator

    playbook = orchestrator.loads(text, file=str(ROOT / "bench-overhead.yml"))
    return orchestrator.plan(playbook, vars={"n": n}, config=config)


#: What a run's timeline and advisor may cost, engine time with them over engine time without.
TIMELINE_MAX = 1.05
#: Rounds are added while the 95% interval of the timeline's on / off ratio is wider than this either side.
TIMELINE_PRECISION = 0.02
ROUNDS_MORE = 20


def engine_cell(text: str, n: int, config: Any, timeline: bool = True) -> Cell:
    """A cell timing one run of an already-planned playbook (with its timeline on or off)."""
    import orchestrator
    from orchestrator.engine.timeline import SWITCH

    the_plan = _plan(text, n, config)

    async def main() -> None:
        result = await orchestrator.arun(the_plan)
        if result.status != "succeeded":
            raise RuntimeError(f"overhead run {result.status}: {[s.error for s in result.steps]}")

    def cell() -> float:
        was = os.environ.get(SWITCH)
        os.environ[SWITCH] = "on" if timeline else "off"
        try:
            return timed_run(main)
        finally:
            if was is None:
                del os.environ[SWITCH]
            else:
                os.environ[SWITCH] = was

    return cell


def baseline_cell(lane: Lane, n: int, start_method: str, per_step: bool) -> Cell:
    """Bare dispatch of `n` no-ops: at most `concurrency` in flight (for_each) or all at once (steps)."""
    width = n if per_step else lane.concurrency

    async def main() -> None:
        gate = asyncio.Semaphore(width)
        if lane.executor == "asyncio":

            async def one() -> None:
                async with gate:
                    await workloads.noop_async()

            await asyncio.gather(*(one() for _ in range(n)))
            return
        loop = asyncio.get_running_loop()
        pool: Executor = (
            ThreadPoolExecutor(32) if lane.executor == "threads" else ProcessPoolExecutor(2, mp_context=get_context(start_method))
        )
        with pool:

            async def submit() -> None:
                async with gate:
                    await loop.run_in_executor(pool, workloads.noop)

            await asyncio.gather(*(submit() for _ in range(n)))

    return lambda: timed_run(main)


def slope(large: float, small: float, n_large: int, n_small: int) -> float:
    """Microseconds per unit between two sizes."""
    return (large - small) / (n_large - n_small) * 1e6


def measure_lane(lane: Lane, sizes: Sizes, config: Any, start_method: str) -> dict[str, Any]:
    big, small = sizes.items[lane.executor], 2 * lane.concurrency
    cells = {
        "engine_large": engine_cell(for_each_text(lane), big, config),
        "engine_small": engine_cell(for_each_text(lane), small, config),
        "bare_large": baseline_cell(lane, big, start_method, False),
        "bare_small": baseline_cell(lane, small, start_method, False),
        "engine_steps_large": engine_cell(steps_text(lane, sizes.steps), 0, config),
        "engine_steps_small": engine_cell(steps_text(lane, SMALL_STEPS), 0, config),
        "bare_steps_large": baseline_cell(lane, sizes.steps, start_method, True),
        "bare_steps_small": baseline_cell(lane, SMALL_STEPS, start_method, True),
    }
    for cell in cells.values():  # warm-up: imports, pools, the forkserver
        cell()
    best = {k: m.best for k, m in measure_rounds(cells, sizes.repeat).items()}
    item_engine = slope(best["engine_large"], best["engine_small"], big, small)
    item_bare = slope(best["bare_large"], best["bare_small"], big, small)
    step_engine = slope(best["engine_steps_large"], best["engine_steps_small"], sizes.steps, SMALL_STEPS)
    step_bare = slope(best["bare_steps_large"], best["bare_steps_small"], sizes.steps, SMALL_STEPS)
    # The timeline's small runs are past its traced head (`timeline.HEAD` items of a step, single-call
    # steps of a run), so that what a run pays once stays out of the slope; it is reported apart.
    item_small, step_small = past_head(small, big), past_head(SMALL_STEPS, sizes.steps)
    item_cost = timeline_cost(for_each_text(lane), (big, item_small), (big, item_small), config, sizes.timeline_rounds)
    step_cost = timeline_cost(
        (steps_text(lane, sizes.steps), steps_text(lane, step_small)), (0, 0), (sizes.steps, step_small),
        config, sizes.timeline_rounds,
    )
    return {
        "kind": lane.kind, "concurrency": lane.concurrency, "baseline": lane.baseline,
        "items": big, "items_small": small, "steps": sizes.steps, "steps_small": SMALL_STEPS,
        "item_engine_us": item_engine, "item_bare_us": item_bare, "item_ratio": ratio(item_engine, item_bare),
        "item_target_max": lane.target_max,
        "step_engine_us": step_engine, "step_bare_us": step_bare, "step_ratio": ratio(step_engine, step_bare),
        **timeline_fields("item", item_cost, item_small), **timeline_fields("step", step_cost, step_small),
        "timeline_target_max": TIMELINE_MAX,
        "engine_run_small_ms": best["engine_small"] * 1e3,
        "times_s": best,
    }


@dataclass(frozen=True)
class TimelineCost:
    """What the timeline costs per unit (item or step), from paired rounds (see `timeline_cost`)."""

    on_us: float  # median slope with the timeline on
    off_us: float  # and off
    ratio: float  # median of the rounds' on / off slope ratios
    low: float  # its 95% confidence interval (distribution-free, from the order statistics)
    high: float
    rounds: int
    one_off_ms: float  # median of the small runs' on - off: what a run pays once (the traced head)


def median_interval(values: Sequence[float]) -> tuple[float, float]:
    """A 95% confidence interval of the median of `values`, from their order statistics (the
    binomial ranks n/2 ± 0.98·√n): no assumption on the distribution, which is skewed here."""
    ordered = sorted(values)
    n = len(ordered)
    half = 0.98 * math.sqrt(n)
    low, high = max(0, math.floor(n / 2 - half)), min(n - 1, math.ceil(n / 2 + half))
    return ordered[low], ordered[high]


def timeline_cost(
    text: str | tuple[str, str], n: tuple[int, int], units: tuple[int, int], config: Any, rounds: tuple[int, int]
) -> TimelineCost:
    """The timeline's cost per unit from rounds of a large and a small run with the timeline on and
    off, each on / off pair back to back, in alternating order (see the module docstring). At least
    `rounds[0]` rounds; then more, `ROUNDS_MORE` at a time up to `rounds[1]`, while the 95% interval
    of the median ratio is wider than ±`TIMELINE_PRECISION` (a rule on the interval's width, never
    on the figure). `text` is one playbook run with n[0] and n[1] items, or two playbooks (large,
    small) of that many steps."""
    large_text, small_text = (text, text) if isinstance(text, str) else text
    on = (engine_cell(large_text, n[0], config), engine_cell(small_text, n[1], config))
    off = (engine_cell(large_text, n[0], config, timeline=False), engine_cell(small_text, n[1], config, timeline=False))
    for cell in (*on, *off):  # warm-up
        cell()
    slopes: dict[bool, list[float]] = {True: [], False: []}
    one_off: list[float] = []
    ratios: list[float] = []

    def paired_round() -> None:
        order = (True, False) if len(ratios) % 2 == 0 else (False, True)
        times = {(timeline, size): (on if timeline else off)[size]() for size in (0, 1) for timeline in order}
        for timeline in (True, False):
            slopes[timeline].append(slope(times[timeline, 0], times[timeline, 1], *units))
        ratios.append(ratio(slopes[True][-1], slopes[False][-1]))
        one_off.append((times[True, 1] - times[False, 1]) * 1e3)

    least, most = rounds
    while len(ratios) < least:
        paired_round()
    while len(ratios) < most and _wide(ratios):
        for _ in range(min(ROUNDS_MORE, most - len(ratios))):
            paired_round()
    low, high = median_interval(ratios)
    return TimelineCost(
        statistics.median(slopes[True]), statistics.median(slopes[False]), statistics.median(ratios),
        low, high, len(ratios), statistics.median(one_off),
    )


def _wide(ratios: Sequence[float]) -> bool:
    low, high = median_interval(ratios)
    return (high - low) / 2 > TIMELINE_PRECISION


def plan_cost(sizes: Sizes, config: Any, repeat: int) -> float:
    """Load + plan, microseconds per step (slope between two playbook sizes)."""
    lane = LANES[0]
    large, small = steps_text(lane, sizes.steps), steps_text(lane, SMALL_STEPS)

    def timed(text: str) -> float:
        started = time.perf_counter()
        _plan(text, 0, config)
        return time.perf_counter() - started

    best = {k: m.best for k, m in measure_rounds({"l": lambda: timed(large), "s": lambda: timed(small)}, repeat).items()}
    return slope(best["l"], best["s"], sizes.steps, SMALL_STEPS)


def run(sizes: Sizes) -> dict[str, Any]:
    """Measure every lane; returns the JSON section."""
    import orchestrator

    config = orchestrator.load_config()
    start_method = config.executor_for("cpu").start_method
    lanes: dict[str, Any] = {}
    for lane in LANES:
        say(f"overhead: {lane.executor}, best of {sizes.repeat}")
        lanes[lane.executor] = measure_lane(lane, sizes, config, start_method)
    return {
        "statistic": "best", "repeat": sizes.repeat, "start_method": start_method,
        "lanes": lanes, "plan_us_per_step": plan_cost(sizes, config, max(3, sizes.repeat)),
    }


def report(section: dict[str, Any]) -> str:
    """The section as Markdown."""
    items: list[list[str]] = []
    steps: list[list[str]] = []
    timeline: list[list[str]] = []
    for name, lane in section["lanes"].items():
        ok = lane["item_ratio"] <= lane["item_target_max"]
        items.append([
            f"{name} ({lane['kind']})", f"{lane['items']:,} at {lane['concurrency']}", lane["baseline"],
            _us(lane["item_bare_us"]), _us(lane["item_engine_us"]),
            f"{lane['item_ratio']:.2f}x (≤ {lane['item_target_max']}: {verdict(ok)})", f"{lane['engine_run_small_ms']:.1f}",
        ])
        steps.append([f"{name} ({lane['kind']})", f"{lane['steps']}", _us(lane["step_bare_us"]),
                      _us(lane["step_engine_us"]), f"{lane['step_ratio']:.2f}x"])
        if "item_timeline_ratio" in lane:
            timeline.extend(_timeline_row(name, lane, unit) for unit in ("item", "step"))
    return (
        "Per `for_each` item (no-op):\n\n"
        + table(["executor", "items at concurrency", "bare baseline", "bare µs/item", "engine µs/item",
                 "engine / bare", "engine run of 2×concurrency items, ms"], items)
        + "\n\nPer step (independent no-op steps; baseline: one bare task / executor call per step, all at once):\n\n"
        + table(["executor", "steps", "bare µs/step", "engine µs/step", "engine / bare"], steps)
        + ("\n\nWhat the timeline and the tag advisor cost (the same runs with `ORCHESTRATOR_TIMELINE=off`, "
           "in rounds, each on / off pair back to back in alternating order; medians over the rounds of the "
           "slopes and of each round's on / off, with the 95% interval of that median; the small runs past the "
           "traced head, whose cost a run pays once and is shown apart):\n\n"
           + table(["executor", "per", "sizes", "rounds", "µs, timeline off", "µs, timeline on", "on / off",
                    "95% interval", "once per run, ms"], timeline) if timeline else "")
        + f"\n\nLoad + plan: {section['plan_us_per_step']:.0f} µs per step. Slopes between two sizes, each time the "
        f"best of {section['repeat']} interleaved runs; worker processes start with {section['start_method']}."
    )


def past_head(small: int, large: int) -> int:
    """The small size of a timeline comparison: `small` more than the traced head, below `large`."""
    from orchestrator.engine.timeline import HEAD

    return min(HEAD + small, large // 2)


def timeline_fields(unit: str, cost: TimelineCost, small: int) -> dict[str, Any]:
    return {
        f"{unit}_timeline_on_us": cost.on_us, f"{unit}_timeline_off_us": cost.off_us,
        f"{unit}_timeline_ratio": cost.ratio, f"{unit}_timeline_ratio_ci95": [cost.low, cost.high],
        f"{unit}_timeline_rounds": cost.rounds, f"{unit}_timeline_one_off_ms": cost.one_off_ms,
        f"{unit}_timeline_small": small,
    }


def timeline_holds(lane: dict[str, Any], unit: str) -> bool:
    """The timeline's cost per `unit` (item or step) is within its target, both slopes resolved."""
    on: float = lane[f"{unit}_timeline_on_us"]
    off: float = lane[f"{unit}_timeline_off_us"]
    paired_ratio: float = lane[f"{unit}_timeline_ratio"]
    limit: float = lane["timeline_target_max"]
    return on > 0 and off > 0 and 0 < paired_ratio <= limit


def _timeline_row(name: str, lane: dict[str, Any], unit: str) -> list[str]:
    low, high = lane[f"{unit}_timeline_ratio_ci95"]
    large = lane["items" if unit == "item" else "steps"]
    return [
        f"{name} ({lane['kind']})", unit, f"{large:,} / {lane[f'{unit}_timeline_small']:,}",
        str(lane[f"{unit}_timeline_rounds"]), _us(lane[f"{unit}_timeline_off_us"]), _us(lane[f"{unit}_timeline_on_us"]),
        f"{lane[f'{unit}_timeline_ratio']:.2f}x (≤ {lane['timeline_target_max']}: {verdict(timeline_holds(lane, unit))})",
        f"{low:.2f}-{high:.2f}", f"{lane[f'{unit}_timeline_one_off_ms']:.1f}",
    ]


def _us(value: float) -> str:
    # A slope at or below zero means noise swamped the difference between the two sizes.
    return f"{value:.1f}" if value > 0 else f"{value:.1f} (not resolved)"


def profile(executor: str, items: int) -> None:
    """cProfile one engine `for_each` run and print where the time goes, in µs per item."""
    import orchestrator

    lane = next(lane for lane in LANES if lane.executor == executor)
    config = orchestrator.load_config()
    cell = engine_cell(for_each_text(lane), items, config)
    cell()  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    elapsed = cell()
    profiler.disable()
    print(f"{executor}: {items:,} items, {elapsed / items * 1e6:.1f} µs/item under the profiler")
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:30]  # type: ignore[attr-defined]
    print(f"{'tottime µs/item':>16} {'cumtime µs/item':>16} {'calls/item':>10}  function")
    for (file, line, name), (_cc, calls, tottime, cumtime, _callers) in rows:
        where = file.replace(str(ROOT) + "/", "")
        print(f"{tottime / items * 1e6:16.2f} {cumtime / items * 1e6:16.2f} {calls / items:10.2f}  {where}:{line}({name})")


def main() -> None:
    parser = argparse.ArgumentParser(description="The engine's per-item and per-step overhead.")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", choices=[lane.executor for lane in LANES])
    args = parser.parse_args()
    from orchestrator.logs import LogSettings, configure

    configure(LogSettings(level="warning"))
    sizes = QUICK if args.quick else FULL
    if args.profile:
        profile(args.profile, sizes.items[args.profile])
        return
    print(report(run(sizes)))


if __name__ == "__main__":
    main()
