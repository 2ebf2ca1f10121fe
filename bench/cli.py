"""The `orchestrate` command as users run it, beside the engine through `orchestrator.arun`, in one run.

    .venv/bin/python -m bench.cli [--quick]
    .venv/bin/python -m bench.cli --docs   # also into bench/results/latest.json and docs/benchmarks.md

Every `orchestrate` figure is a fresh subprocess (the console script), with history on (recorded in
a temporary SQLite file through ORCHESTRATOR_HISTORY) and JSON logs on stderr, as in CI. The `arun`
side runs in this process: load, plan and run of the same playbook, keeping only the outputs
templates read, as the CLI does, with no reporter and no history. Before measuring, the package's
bytecode is compiled (as an installed package's is: `uv pip install --compile-bytecode`), so an
editable install under PYTHONDONTWRITEBYTECODE does not pay for compiling it in every process.

- fan-out: one `for_each` step over N items, each a `set` (the engine's cheapest item);
- steps: N independent `set` steps, `--format text` beside `--format json`;
- start-up: a one-step run, best of R, beside `python -c "import asyncio"`, best of R; with the
  validated cache (the playbook read back, as on every run after the first) and without it (each
  run validates, as the first run of a text does);
- dry run: `--dry-run` of two playbook sizes (bench/plan_scale.py's mix of http, for_each,
  wait_until and cpu steps), validated cache off; per step is (T(N) - T(1)) / (N - 1), the
  one-off start-up left out.

The runs share a validated cache of their own (ORCHESTRATOR_CACHE in a temporary folder), empty
when the bench starts and filled by the warm-up round.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS,
    ROOT,
    Cell,
    busy_fraction,
    machine,
    measure_rounds,
    ratio,
    say,
    seconds,
    table,
    times,
    verdict,
    wait_until_idle,
    write_json,
)
from bench.plan_scale import generate as dry_run_playbook


@dataclass(frozen=True)
class Sizes:
    items: int
    steps: int
    dry_small: int
    dry_large: int
    startup_repeat: int
    repeat: int


FULL = Sizes(items=1_000_000, steps=5_000, dry_small=5_000, dry_large=20_000, startup_repeat=10, repeat=3)
QUICK = Sizes(items=20_000, steps=200, dry_small=300, dry_large=1_200, startup_repeat=2, repeat=1)

TARGETS = {
    "fanout_json_over_arun_max": 1.3,
    "steps_text_over_json_max": 1.3,
    "startup_max_s": 0.25,
    "startup_over_asyncio_max": 15.0,
    "dry_run_per_step_growth_max": 1.1,
}

FANOUT = 'name: cli fan-out\nsteps:\n  - id: fan\n    for_each: "{{ range(n) }}"\n    concurrency: 100\n    set: {value: "{{ item }}"}\n'
ONE_STEP = "name: cli one step\nsteps:\n  - id: one\n    set: {value: 1}\n"


def steps_playbook(count: int) -> str:
    return "name: cli steps\nsteps:\n" + "".join(f"  - id: s{i}\n    set: {{value: {i}}}\n" for i in range(count))


def orchestrate_command() -> list[str]:
    """The console script beside this interpreter, as users run it (else the same entry point)."""
    script = Path(sys.executable).with_name("orchestrate")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from orchestrator.cli.main import main; raise SystemExit(main())"]


def compile_bytecode() -> None:
    """What an install does once: later processes load the package's bytecode, not its source."""
    compileall.compile_dir(str(ROOT / "orchestrator"), quiet=1)


class Folder:
    """The playbooks and the history file of one bench run, in a temporary folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.history = root / "runs.sqlite"
        #: The validated cache of these runs: empty when the bench starts, filled by the warm-up.
        self.cache = root / "cache"
        self.env = {**os.environ, "ORCHESTRATOR_HISTORY": str(self.history), "ORCHESTRATOR_CACHE": str(self.cache)}
        for name in ("NO_COLOR", "FORCE_COLOR"):
            self.env.pop(name, None)
        (root / "tasks.py").write_text("def render_config(vm):\n    return str(vm)\n", encoding="utf-8")

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        return path


def cli_cell(folder: Folder, *args: str, expect: str | None = None, history: bool = True, cache: bool = True) -> Cell:
    """One `orchestrate ARGS` in a fresh process; exit status 0 required (and `expect` on stdout).
    `cache=False`: the validated cache off, so the playbook and configuration are validated each time."""
    command = [*orchestrate_command(), *args]
    env = {**folder.env, **({} if history else {"ORCHESTRATOR_HISTORY": "off"}), **({} if cache else {"ORCHESTRATOR_CACHE": "off"})}

    def cell() -> float:
        started = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=folder.root, capture_output=True)
        elapsed = time.perf_counter() - started
        if done.returncode != 0 or (expect is not None and expect.encode() not in done.stdout):
            tail = done.stderr.decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(args)}: exit status {done.returncode}\n{tail}")
        return elapsed

    return cell


def python_cell(code: str) -> Cell:
    def cell() -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - started

    return cell


def arun_cell(path: Path, variables: dict[str, Any]) -> Cell:
    """Load, plan and run in this process, as a script calling `orchestrator.arun(path)` does."""
    import orchestrator

    def cell() -> float:
        started = time.perf_counter()
        result = asyncio.run(orchestrator.arun(path, vars=variables, outputs="read"))
        elapsed = time.perf_counter() - started
        if result.status != "succeeded":
            raise RuntimeError(f"{path.name} through arun: {result.status}")
        return elapsed

    return cell


def run(sizes: Sizes) -> dict[str, Any]:
    """Measure every workload; returns the JSON section."""
    compile_bytecode()
    root = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    folder = Folder(root)
    before = os.environ.get("ORCHESTRATOR_CACHE")
    os.environ["ORCHESTRATOR_CACHE"] = str(folder.cache)  # `arun` in this process uses the same cache
    try:
        return _measure(folder, sizes)
    finally:
        if before is None:
            os.environ.pop("ORCHESTRATOR_CACHE", None)
        else:
            os.environ["ORCHESTRATOR_CACHE"] = before
        shutil.rmtree(root, ignore_errors=True)


def _measure(folder: Folder, sizes: Sizes) -> dict[str, Any]:
    fan, steps, one = folder.write("fan.yml", FANOUT), folder.write("steps.yml", steps_playbook(sizes.steps)), folder.write("one.yml", ONE_STEP)
    dry = {n: folder.write(f"dry{n}.yml", dry_run_playbook(n)) for n in (1, sizes.dry_small, sizes.dry_large)}
    n_items = f"n={sizes.items}"
    work: dict[str, Cell] = {
        "fanout_json": cli_cell(folder, str(fan), "--var", n_items, "--format", "json", expect='"succeeded"'),
        "fanout_text": cli_cell(folder, str(fan), "--var", n_items, "--format", "text", expect="succeeded"),
        "fanout_json_no_history": cli_cell(folder, str(fan), "--var", n_items, "--format", "json", expect='"succeeded"',
                                           history=False),
        "fanout_arun": arun_cell(fan, {"n": sizes.items}),
        "steps_json": cli_cell(folder, str(steps), "--format", "json", expect='"succeeded"'),
        "steps_text": cli_cell(folder, str(steps), "--format", "text", expect="succeeded"),
        "steps_arun": arun_cell(steps, {}),
        # Validated each time, as in a CI job on a fresh checkout: what grows with the playbook is measured.
        **{f"dry_{n}": cli_cell(folder, "--dry-run", str(path), "--format", "text", cache=False) for n, path in dry.items()},
    }
    startup: dict[str, Cell] = {
        "one_step_json": cli_cell(folder, str(one), "--format", "json", expect='"succeeded"'),
        "one_step_text": cli_cell(folder, str(one), "--format", "text", expect="succeeded"),
        "one_step_json_validating": cli_cell(folder, str(one), "--format", "json", expect='"succeeded"', cache=False),
        "import_asyncio": python_cell("import asyncio"),
    }
    for name, cell in {**work, **startup}.items():  # warm-up: the file cache, this process's imports
        say(f"cli: warm-up {name}")
        cell()
    say(f"cli: start-up, best of {sizes.startup_repeat}")
    start = {k: m.best for k, m in measure_rounds(startup, sizes.startup_repeat).items()}
    say(f"cli: workloads, best of {sizes.repeat}")
    best = {k: m.best for k, m in measure_rounds(work, sizes.repeat).items()}
    if folder.history.stat().st_size == 0:
        raise RuntimeError("history was on, yet nothing was recorded")

    def per_step(n: int) -> float:
        return (best[f"dry_{n}"] - best["dry_1"]) / (n - 1)

    small, large = per_step(sizes.dry_small), per_step(sizes.dry_large)
    return {
        "statistic": "best", "repeat": sizes.repeat, "startup_repeat": sizes.startup_repeat, "targets": TARGETS,
        "fanout": {
            "items": sizes.items, "json_s": best["fanout_json"], "text_s": best["fanout_text"], "arun_s": best["fanout_arun"],
            "json_no_history_s": best["fanout_json_no_history"],
            "json_over_arun": ratio(best["fanout_json"], best["fanout_arun"]),
            "no_history_over_arun": ratio(best["fanout_json_no_history"], best["fanout_arun"]),
            "history_us_per_item": (best["fanout_json"] - best["fanout_json_no_history"]) / sizes.items * 1e6,
            "text_over_arun": ratio(best["fanout_text"], best["fanout_arun"]),
            "us_per_item_json": best["fanout_json"] / sizes.items * 1e6, "us_per_item_arun": best["fanout_arun"] / sizes.items * 1e6,
        },
        "steps": {
            "steps": sizes.steps, "json_s": best["steps_json"], "text_s": best["steps_text"], "arun_s": best["steps_arun"],
            "text_over_json": ratio(best["steps_text"], best["steps_json"]),
            "json_over_arun": ratio(best["steps_json"], best["steps_arun"]),
        },
        "startup": {
            "one_step_json_s": start["one_step_json"], "one_step_text_s": start["one_step_text"],
            "import_asyncio_s": start["import_asyncio"], "one_step_json_validating_s": start["one_step_json_validating"],
            "json_over_asyncio": ratio(start["one_step_json"], start["import_asyncio"]),
            "validating_over_asyncio": ratio(start["one_step_json_validating"], start["import_asyncio"]),
            "text_over_asyncio": ratio(start["one_step_text"], start["import_asyncio"]),
        },
        "dry_run": {
            "small": sizes.dry_small, "large": sizes.dry_large, "one_step_s": best["dry_1"],
            "small_s": best[f"dry_{sizes.dry_small}"], "large_s": best[f"dry_{sizes.dry_large}"],
            "small_ms_per_step": small * 1e3, "large_ms_per_step": large * 1e3, "per_step_growth": ratio(large, small),
        },
    }


def checks(section: dict[str, Any]) -> list[tuple[str, str, float, bool]]:
    """(figure, target, measured, holds) for every target of the section."""
    t, f, s, u, d = section["targets"], section["fanout"], section["steps"], section["startup"], section["dry_run"]
    return [
        (f"cli: {f['items']:,}-item fan-out, `orchestrate --format json` (history on) / arun",
         f"≤ {t['fanout_json_over_arun_max']}", f["json_over_arun"], f["json_over_arun"] <= t["fanout_json_over_arun_max"]),
        (f"cli: {s['steps']:,} steps, `--format text` / `--format json`", f"≤ {t['steps_text_over_json_max']}",
         s["text_over_json"], s["text_over_json"] <= t["steps_text_over_json_max"]),
        ("cli: one-step run, JSON logs, best (s)", f"≤ {t['startup_max_s']} s", u["one_step_json_s"],
         u["one_step_json_s"] <= t["startup_max_s"]),
        ("cli: one-step run / `python -c \"import asyncio\"`", f"≤ {t['startup_over_asyncio_max']}",
         u["json_over_asyncio"], u["json_over_asyncio"] <= t["startup_over_asyncio_max"]),
        (f"cli: dry run per step, {d['large']:,} / {d['small']:,} steps", f"≤ {t['dry_run_per_step_growth_max']}",
         d["per_step_growth"], d["per_step_growth"] <= t["dry_run_per_step_growth_max"]),
    ]


def report(section: dict[str, Any], verdicts: bool = True) -> str:
    """The section as Markdown (with a table of its targets' verdicts unless `verdicts` is False)."""
    f, s, u, d = section["fanout"], section["steps"], section["startup"], section["dry_run"]
    work = table(
        ["workload", "`orchestrate --format json`", "`orchestrate --format text`", "`arun` in-process", "json / arun", "text / json"],
        [
            [f"{f['items']:,}-item `set` fan-out", seconds(f["json_s"]), seconds(f["text_s"]), seconds(f["arun_s"]),
             times(f["json_over_arun"]), times(ratio(f["text_s"], f["json_s"]))],
            [f"{s['steps']:,} `set` steps", seconds(s["json_s"]), seconds(s["text_s"]), seconds(s["arun_s"]),
             times(s["json_over_arun"]), times(s["text_over_json"])],
        ],
    )
    start = table(
        ["start-up (best of {})".format(section["startup_repeat"]), "time", "/ `import asyncio`"],
        [["`orchestrate` one-step run, `--format json`", seconds(u["one_step_json_s"]), times(u["json_over_asyncio"])],
         ["`orchestrate` one-step run, `--format text`", seconds(u["one_step_text_s"]), times(u["text_over_asyncio"])],
         ["`orchestrate` one-step run, `--format json`, validated cache off (each run validates)",
          seconds(u["one_step_json_validating_s"]), times(u["validating_over_asyncio"])],
         ['`python -c "import asyncio"`', seconds(u["import_asyncio_s"]), "1.00x"]],
    )
    dry = table(
        ["`--dry-run`", "time", "ms per step (start-up left out)"],
        [["1 step", seconds(d["one_step_s"]), "—"],
         [f"{d['small']:,} steps", seconds(d["small_s"]), f"{d['small_ms_per_step']:.3f}"],
         [f"{d['large']:,} steps", seconds(d["large_s"]), f"{d['large_ms_per_step']:.3f}"]],
    )
    held = table(["figure", "target", "measured", "verdict"],
                 [[name, target, f"{value:.3g}", verdict(holds)] for name, target, value, holds in checks(section)])
    return (
        f"Per item through the CLI: {f['us_per_item_json']:.2f} µs (json), through `arun`: {f['us_per_item_arun']:.2f} µs, "
        f"each including its one-off costs. The fan-out with history off: {seconds(f['json_no_history_s'])}, "
        f"{times(f['no_history_over_arun'])} `arun`; {_history_cost(f['history_us_per_item'])}"
        f"\n\n{work}\n\n{start}\n\n{dry}\n\n"
        f"Dry-run cost per step, {d['large']:,} over {d['small']:,} steps: {times(d['per_step_growth'])}. "
        f"Best of {section['repeat']} interleaved runs (start-up: of {section['startup_repeat']})."
        + (f"\n\n{held}" if verdicts else "")
    )


def _history_cost(us_per_item: float) -> str:
    if us_per_item < 0:  # the run with history was the faster: the difference is this run's noise
        return f"recording it costs nothing this run can tell apart ({us_per_item:.2f} µs per item, below its noise)."
    return f"recording it costs {us_per_item:.2f} µs per item."


def section_text(section: dict[str, Any]) -> str:
    """The section as docs/benchmarks.md shows it: when it was measured, the figures, the method."""
    measured = section.get("measured")
    when = "Measured"
    if measured:
        when = f"Measured on {measured['date']} from commit `{measured['commit']}`"
        when += " with uncommitted changes" if measured.get("dirty") else ""
    return (
        f"{when} by `python -m bench.cli`: the same workloads through the `orchestrate` command, as users run it "
        "(a fresh process each time, history on, JSON logs on stderr, bytecode compiled, the validated cache "
        "filled by a warm-up run as by any earlier run; the dry runs and one start-up row with it off, so that "
        "they validate every time), and through "
        "`orchestrator.arun` in the bench's process (load, plan and run; no reporter, no history), side by side. "
        "The fan-out's items are `set` steps, the engine's cheapest; the dry runs plan bench/plan_scale.py's mix of "
        "`http`, `for_each`, `wait_until` and `cpu` steps. The verdicts are in the targets table at the top.\n\n"
        + report(section, verdicts=False)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The `orchestrate` command beside `orchestrator.arun`.")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the section's figures here")
    parser.add_argument("--docs", action="store_true",
                        help="put the section into bench/results/latest.json and regenerate docs/benchmarks.md from it")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for other work on the machine to stop")
    args = parser.parse_args(argv)
    from orchestrator.logs import LogSettings, configure

    configure(LogSettings(level="warning"))
    busy = wait_until_idle(args.wait_idle) if args.wait_idle > 0 else busy_fraction()
    load_before = os.getloadavg()[0]
    section = run(QUICK if args.quick else FULL)
    section["load_average_1m"] = {"start": load_before, "end": os.getloadavg()[0]}
    if busy is not None:
        section["cpu_busy_before"] = busy
    facts = machine()
    git = facts.get("git") or {}
    section["measured"] = {"date": facts["date"], "commit": (git.get("commit") or "unknown")[:10], "dirty": bool(git.get("dirty"))}
    if args.json:
        args.json.write_text(json.dumps(section, indent=2) + "\n", encoding="utf-8")
    print(report(section))
    if args.docs and not args.quick:
        from bench.run import DOCS, targets, write_docs

        latest = RESULTS / "latest.json"
        results = json.loads(latest.read_text(encoding="utf-8"))
        results["cli"] = section
        results["targets"] = targets(results)
        write_json(latest, results)
        found = write_docs(results, DOCS)
        say(f"docs: {DOCS / 'benchmarks.md'} ({len(found)} problems)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
