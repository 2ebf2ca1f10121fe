"""The benchmark suite in one command.

    .venv/bin/python -m bench           # full: bench/results/latest.json, docs/benchmarks.md and .png
    .venv/bin/python -m bench --quick   # small sizes, < 60 s: checks every figure is produced (finite),
                                        # asserts no timing, writes bench/results/quick.json, leaves docs alone

Each section is measured in a fresh interpreter (`bench/section.py`), so that none depends on what
the ones before it left in the process. Exit status 1 if a figure is missing or not finite; targets
missed are reported, never failed on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import adaptive, cli, journal, overhead, pool_auto, scale, talk_table
from bench.common import (
    RESULTS,
    ROOT,
    busy_fraction,
    machine,
    problems,
    say,
    seconds,
    table,
    times,
    verdict,
    wait_until_idle,
    write_json,
)
from bench.section import SECTIONS

DOCS = ROOT / "docs"
#: Benches other engineers own; run as scripts in full mode when present, their output kept verbatim.
EXTERNAL = ("http_client", "blocking_sdk", "process_dispatch", "plan_scale", "dask_overhead")
EXTERNAL_TIMEOUT = 600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run the benchmark suite.")
    parser.add_argument("--quick", action="store_true", help="small sizes; no docs; results to bench/results/quick.json")
    parser.add_argument("--out", type=Path, help="where to write the results JSON")
    parser.add_argument("--no-docs", action="store_true", help="do not regenerate docs/benchmarks.md and .png")
    parser.add_argument("--skip-external", action="store_true", help=f"do not run bench/{{{','.join(EXTERNAL)}}}.py")
    parser.add_argument("--wait-idle", type=float, metavar="SECONDS",
                        help="before each section, wait up to this long for other work to stop (default: 900 full, 0 quick)")
    parser.add_argument("--render", type=Path, metavar="RESULTS_JSON",
                        help="only regenerate docs/benchmarks.md and .png from a results file; measure nothing")
    args = parser.parse_args(argv)
    if args.render:
        found = write_docs(json.loads(args.render.read_text(encoding="utf-8")), DOCS)
        for problem in found:
            say(f"problem: {problem}")
        return 1 if found else 0
    quick = args.quick
    wait_idle = args.wait_idle if args.wait_idle is not None else (0.0 if quick else 900.0)
    out = args.out or RESULTS / ("quick.json" if quick else "latest.json")
    started = time.perf_counter()
    results: dict[str, Any] = {"mode": "quick" if quick else "full", "machine": machine()}
    for name, module in SECTIONS.items():
        busy = wait_until_idle(wait_idle) if wait_idle > 0 else busy_fraction()
        section_started, load_before = time.perf_counter(), os.getloadavg()[0]
        results[name] = measure_section(name, quick)
        results[name]["section_seconds"] = time.perf_counter() - section_started
        # Other work on this machine is the context of every figure: record how busy it was.
        results[name]["load_average_1m"] = {"start": load_before, "end": os.getloadavg()[0]}
        if busy is not None:
            results[name]["cpu_busy_before"] = busy
        print(f"\n## {name}\n\n{module.report(results[name])}\n", flush=True)
    if not quick and not args.skip_external:
        results["external"] = run_external()
    results["targets"] = targets(results)
    print(table(["figure", "target", "measured", "verdict"], results_rows(results["targets"])))
    results["suite_seconds"] = time.perf_counter() - started
    found = [p for p in problems({k: v for k, v in results.items() if k != "machine"})]
    write_json(out, results)
    say(f"results: {out} ({results['suite_seconds']:.0f} s)")
    if quick or args.no_docs:
        # Render anyway, into a scratch folder, so that quick mode proves the report code works too.
        with tempfile.TemporaryDirectory() as scratch:
            found += write_docs(results, Path(scratch))
    else:
        found += write_docs(results, DOCS)
        say(f"docs: {DOCS / 'benchmarks.md'}, {DOCS / 'benchmarks.png'}")
    for problem in found:
        say(f"problem: {problem}")
    return 1 if found else 0


def measure_section(name: str, quick: bool) -> dict[str, Any]:
    """One section, measured in a fresh interpreter (`bench/section.py` says why)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / f"{name}.json"
        command = [sys.executable, "-m", "bench.section", name, str(out), *(["--quick"] if quick else [])]
        subprocess.run(command, cwd=ROOT, check=True)
        data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return data


def run_external() -> dict[str, Any]:
    """Run each other bench that exists, as its docstring says (`python bench/NAME.py`)."""
    out: dict[str, Any] = {}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    for name in EXTERNAL:
        script = ROOT / "bench" / f"{name}.py"
        if not script.is_file():
            continue
        say(f"external: bench/{name}.py")
        started = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=EXTERNAL_TIMEOUT)
            code, text = done.returncode, done.stdout + (f"\n[stderr]\n{done.stderr[-2000:]}" if done.returncode else "")
        except subprocess.TimeoutExpired:
            code, text = -1, f"timed out after {EXTERNAL_TIMEOUT} s"
        out[name] = {"returncode": code, "seconds": time.perf_counter() - started, "output": text.rstrip() or "(no output)"}
    return out


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every figure that has a target, with its verdict."""
    rows: list[dict[str, Any]] = []

    def add(figure: str, target: str, value: float, holds: bool) -> None:
        rows.append({"figure": figure, "target": target, "value": value, "holds": holds})

    t = results["talk_table"]
    for w in t["workloads"].values():
        limit = t["targets"]["engine_over_best_max"]
        add(f"talk table, {w['title']}: engine right tag / best hand-written", f"≤ {limit}", w["engine_over_best"],
            w["engine_over_best"] <= limit)
    cpu, least = t["workloads"]["cpu"], t["targets"]["cpu_right_over_wrong_min"]
    add("talk table, CPU: right tag (processes) over wrong tag (threads)", f"≥ {least}", cpu["right_over_wrong"],
        cpu["right_over_wrong"] >= least)
    for name, lane in results["overhead"]["lanes"].items():
        add(f"overhead, {name} for_each: engine / bare µs per item", f"≤ {lane['item_target_max']}", lane["item_ratio"],
            lane["item_ratio"] <= lane["item_target_max"])
        for unit in ("item", "step"):
            if f"{unit}_timeline_ratio" in lane:
                value, limit = lane[f"{unit}_timeline_ratio"], lane["timeline_target_max"]
                add(f"overhead, {name}: timeline and advisor on / off, µs per {unit}", f"≤ {limit}", value,
                    overhead.timeline_holds(lane, unit))
    g = results["scale"]["growth"]
    add(f"scale: engine peak RSS, {g['to_items']:,} / {g['from_items']:,} items", f"≤ {g['target_engine_peak_ratio_max']}",
        g["engine_peak_ratio"], g["engine_peak_ratio"] <= g["target_engine_peak_ratio_max"])
    if "journal" in results:
        j = results["journal"]
        for name, key in (("set", "set_max"), ("get", "get_max")):
            w, limit = j["workloads"][name], j["targets"][key]
            add(f"journal, {name} fan-out: recorded / unrecorded", f"≤ {limit}", w["ratio"], w["ratio"] <= limit)
    if "cli" in results:
        for figure, target, value, holds in cli.checks(results["cli"]):
            add(figure, target, value, holds)
            if target.endswith(" s"):  # a time, not a ratio
                rows[-1]["unit"] = "s"
    if "adaptive" in results:
        a, goal = results["adaptive"], results["adaptive"]["targets"]
        add("adaptive: auto / best fixed concurrency, creates per second", f"≥ {goal['throughput_min']}", a["auto_over_best"],
            a["auto_over_best"] >= goal["throughput_min"])
        add("adaptive: auto, share of responses 429", f"≤ {goal['refused_max']}", a["auto_refused_share"],
            a["auto_refused_share"] <= goal["refused_max"])
        add("adaptive: auto, longest settling after a capacity change", f"≤ {goal['settle_max_s']:g} s", a["auto_settle_max_s"],
            a["auto_settle_max_s"] <= goal["settle_max_s"])
        rows[-1]["unit"] = "s"
    if "pool_auto" in results:
        p = results["pool_auto"]
        add("thread pool: workers: auto / best fixed size, blocking fan-out time", f"≤ {p['target_max']}", p["auto_over_best"],
            p["auto_over_best"] <= p["target_max"])
    return rows


def results_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [[r["figure"], r["target"], seconds(r["value"]) if r.get("unit") == "s" else times(r["value"]), verdict(r["holds"])]
            for r in rows]


def write_docs(results: dict[str, Any], folder: Path) -> list[str]:
    """Write benchmarks.md and benchmarks.png into `folder`; returns problems (empty files)."""
    from bench.plot import talk_table_png

    folder.mkdir(parents=True, exist_ok=True)
    md, png = folder / "benchmarks.md", folder / "benchmarks.png"
    md.write_text(render(results), encoding="utf-8")
    talk_table_png(results["talk_table"], png)
    pngs = [png]
    if "adaptive" in results:
        pngs.append(folder / "benchmarks-adaptive.png")
        adaptive.concurrency_png(results["adaptive"], pngs[-1])
    return [f"{p} is empty" for p in (md, *pngs) if p.stat().st_size == 0]


def render(results: dict[str, Any]) -> str:
    """docs/benchmarks.md."""
    m = results["machine"]
    git = m.get("git") or {}
    commit = f"commit `{git['commit'][:10]}`{' with uncommitted changes' if git.get('dirty') else ''}" if git else "an unknown commit"
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    load = ", ".join(f"{x:.2f}" for x in m["load_average_at_start"])
    loads = "; ".join(
        f"{name} {results[name]['load_average_1m']['start']:.2f} → {results[name]['load_average_1m']['end']:.2f}"
        + (f" (CPUs {results[name]['cpu_busy_before']:.0%} busy with other work just before)" if "cpu_busy_before" in results[name] else "")
        for name in ("talk_table", "overhead", "scale", "journal", "cli", "adaptive", "pool_auto") if name in results
    )
    external = ""
    for name, ext in results.get("external", {}).items():
        status = "" if ext["returncode"] == 0 else f" (exit status {ext['returncode']})"
        external += f"\n### `bench/{name}.py`{status}\n\n```text\n{ext['output']}\n```\n"
    if external:
        external = "\n## Other benches, run by the suite\n\nTheir own output, verbatim (owned and documented by their modules).\n" + external
    return f"""# Benchmarks

Generated by `python -m bench` on {m['date']} from {commit}, in {results['suite_seconds']:.0f} s. Do not edit by
hand: rerun the suite. Raw figures: `bench/results/latest.json`.

Machine: {m['cpu_count']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, {m['platform']}, {m['implementation']}
{m['python']}; load average (1, 5, 15 min) at start {load}; 1-minute load average at the start → end of each
section: {loads}. Packages: {packages}.

## Targets

{table(["figure", "target", "measured", "verdict"], results_rows(results["targets"]))}

## 1. The talk's table

Three kinds of work, each run every way by hand and by the engine (a one-step playbook: a `for_each`
`call:` step, tagged right for its work, then tagged wrong).

![Speed-up over sequential per strategy and workload](benchmarks.png)

{talk_table.report(results["talk_table"])}

## 2. The engine's overhead

{overhead.report(results["overhead"])}

## 3. `for_each` at scale

{scale.report(results["scale"])}

`python -m bench.fanout_memory` measures the 100,000-item, concurrency-50 case alone, in one command.

## 4. The durable journal

{journal.report(results["journal"]) if "journal" in results else "(not measured in this run)"}

## 5. The `orchestrate` command

{cli.section_text(results["cli"]) if "cli" in results else "(not measured in this run)"}

## 6. Adaptive concurrency

`bench/adaptive.py`: one `for_each` of creates against the sandbox whose capacity changes mid-run, with
`concurrency: auto` and with every fixed concurrency from 1 to 256 (see [adaptive concurrency](adaptive.md)).

{adaptive.report(results["adaptive"]) if "adaptive" in results else "(not measured in this run)"}

{"![Requests in flight at the sandbox over time, auto beside the best fixed setting](benchmarks-adaptive.png)" if "adaptive" in results else ""}

`bench/pool_auto.py`: the thread pool at `workers: auto` beside every fixed size.

{pool_auto.report(results["pool_auto"]) if "pool_auto" in results else "(not measured in this run)"}
{external}
## Method

- Every figure is printed beside its baseline measured in the same run, as a ratio: the machine is
  noisy (2 cores shared by the client, the server process and the worker processes), and ratios hold
  better than times. No figure is hard-coded; the CPU loop is calibrated at start to ~50 ms.
- A time is the **best** of its runs (noise only ever adds time); runs are interleaved round by round
  so a slow spell hits every cell alike. RSS figures are the median of fresh subprocesses. Before each
  section the suite waits (up to 15 minutes) until other processes use less than 25% of the CPUs, and
  records how busy they were: a CPU-bound process elsewhere takes one of the two cores, and with it
  any parallel speed-up of the CPU workload. Each section runs in a fresh interpreter
  (`bench/section.py`), so none depends on what the sections before it left in the process.
- Talk table: every cell runs the same functions (`bench/workloads.py`) and its time includes creating
  and closing its pool or HTTP session, as a script would. The engine's time includes loading and
  planning the playbook. The I/O server (`orchestrator.sandbox`, 50 ms latency) runs in its own
  process. Worker processes use the start method of the shipped configuration on both sides, and the
  forkserver is started (by the engine) before anything is timed. "asyncio" alone runs blocking and
  CPU functions inline on the loop, which is sequential.
- Overhead: per-item and per-step costs are slopes between two sizes, which leave out one-off costs
  (planning, pool start-up) on both sides alike; plans are built before timing. The timeline's cost
  is the median of paired on / off rounds with its 95% interval (`bench/overhead.py` says how many
  rounds and why); it is most of the suite's half hour.
- Logging is configured at `warning` (structlog to stderr), so the engine's per-step `info` events
  are filtered as in a quiet run; the engine emits no per-item events.

## How to rerun

```console
$ .venv/bin/python -m bench                  # everything (about 30 min); rewrites this page, the PNGs and bench/results/latest.json
$ .venv/bin/python -m bench --quick          # < 60 s smoke run: bench/results/quick.json, docs untouched
$ .venv/bin/python -m bench.overhead         # one section alone (also: --profile asyncio|threads|processes)
$ .venv/bin/python -m bench.scale
$ .venv/bin/python -m bench.fanout_memory    # 100,000 items at concurrency 50, engine beside a worker pool
$ .venv/bin/python -m bench.journal          # runs recorded by the durable journal against unrecorded
$ .venv/bin/python -m bench.adaptive --png docs/benchmarks-adaptive.png  # auto beside fixed concurrency
$ .venv/bin/python -m bench.pool_auto        # the thread pool at workers: auto beside every fixed size
$ .venv/bin/python -m bench.cli              # the `orchestrate` command beside `arun` (--docs: into this page)
```
"""
