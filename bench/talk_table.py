"""The talk's table: three kinds of work, each run every way by hand and by the engine.

Workloads: non-blocking I/O (GETs to a local server with 50 ms latency, in its own process),
blocking I/O (a `time.sleep`-bound SDK stand-in) and CPU (a pure-Python loop of ~50 ms, calibrated
here). Every cell runs the same functions from `bench.workloads`; every cell's time includes
creating and closing its pool or session, as a script would. The engine runs a one-step playbook,
a `for_each` `call:` step, through `orchestrator.arun` (load and plan included), once with the step
tagged right for its work and once tagged wrong.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any

from bench import workloads
from bench.common import (
    ROOT,
    Cell,
    measure_rounds,
    ratio,
    say,
    seconds,
    table,
    timed,
    timed_run,
    times,
    verdict,
    wait_until_idle,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

WIDTH = 10  # items in flight: threads, semaphore, engine `concurrency`
PROCESSES = os.cpu_count() or 1  # ProcessPoolExecutor's default, and the engine's `workers: auto`
ONCE_ABOVE = 2.0  # seconds: cells slower than this (sleep-bound sequential ones) run once
TARGET_ENGINE_OVER_BEST = 1.15
TARGET_CPU_RIGHT_OVER_WRONG = 1.7

HAND_WRITTEN = ("sequential", "threads", "processes", "asyncio", "asyncio + threads", "asyncio + processes")
ENGINE = ("engine, right tag", "engine, wrong tag")
HTTP_ACTION = "engine, http action"


@dataclass(frozen=True)
class Sizes:
    io: int
    blocking: int
    cpu: int
    cpu_seconds: float
    repeat: int
    cpu_repeat: int  # CPU cells compete with anything else running here: more runs, for a quiet one
    cpu_idle_wait: float  # seconds a CPU cell may wait for other work to stop before it runs


FULL = Sizes(io=100, blocking=100, cpu=40, cpu_seconds=0.05, repeat=3, cpu_repeat=5, cpu_idle_wait=60)
QUICK = Sizes(io=6, blocking=6, cpu=4, cpu_seconds=0.01, repeat=1, cpu_repeat=1, cpu_idle_wait=0)


@dataclass(frozen=True)
class Tag:
    """How the engine runs a workload: the step's action lines and the tag it carries."""

    label: str
    kind: str | None  # None: inferred from the action
    action: str  # YAML for the action key(s), e.g. "call: bench.workloads:spin"


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    per_item: str
    items: int
    fn: Callable[..., Any]  # the synchronous version: sequential, threads, processes
    kwargs: dict[str, Any]
    coroutine: Callable[..., Awaitable[Any]] | None  # the non-blocking version, if there is one
    right: Tag
    wrong: Tag
    sleep_bound: bool = True  # its slow cells wait rather than compute, so one run of them is enough


def _call(fn: Callable[..., Any], kwargs: dict[str, Any]) -> str:
    args = ", ".join(f'{k}: "{{{{ {k} }}}}"' for k in kwargs)
    return f"call: bench.workloads:{fn.__name__}\n    with: {{{args}}}"


def workloads_for(sizes: Sizes, url: str) -> list[Workload]:
    rounds = workloads.calibrate(sizes.cpu_seconds)
    io, sdk, cpu = {"url": url}, {"seconds": workloads.LATENCY}, {"rounds": rounds}
    return [
        Workload(
            "io", "non-blocking I/O", "GET /v1/networks, 50 ms server latency (server in its own process)",
            sizes.io, workloads.fetch_sync, io, workloads.fetch_async,
            Tag("coroutine (aiohttp) tagged non-blocking", "non-blocking", _call(workloads.fetch_async, io)),
            Tag("sync client (urllib) tagged non-blocking", "non-blocking", _call(workloads.fetch_sync, io)),
        ),
        Workload(
            "blocking", "blocking I/O", "time.sleep(0.05) SDK stand-in", sizes.blocking, workloads.sdk_call, sdk, None,
            Tag("tagged blocking (threads)", "blocking", _call(workloads.sdk_call, sdk)),
            Tag("tagged non-blocking (inline on the loop)", "non-blocking", _call(workloads.sdk_call, sdk)),
        ),
        Workload(
            "cpu", "CPU", f"pure-Python loop, {rounds:,} rounds (calibrated to ~{sizes.cpu_seconds * 1e3:.0f} ms at start)", sizes.cpu,
            workloads.spin, cpu, None,
            Tag("tagged cpu (processes)", "cpu", _call(workloads.spin, cpu)),
            Tag("tagged blocking (threads)", "blocking", _call(workloads.spin, cpu)),
            sleep_bound=False,
        ),
    ]


def hand_written(w: Workload, n: int, start_method: str) -> dict[str, Cell]:
    """The six hand-written strategies for workload `w` over `n` items."""
    call = functools.partial(w.fn, **w.kwargs)

    def sequential() -> None:
        for _ in range(n):
            call()

    def pooled(make: Callable[[], Executor]) -> Callable[[], None]:
        def run() -> None:
            with make() as pool:
                for future in [pool.submit(call) for _ in range(n)]:
                    future.result()

        return run

    async def on_loop() -> None:
        if w.coroutine is not None:  # non-blocking I/O: coroutines, WIDTH in flight
            gate, coroutine = asyncio.Semaphore(WIDTH), w.coroutine

            async def one() -> None:
                async with gate:
                    await coroutine(**w.kwargs)

            await asyncio.gather(*(one() for _ in range(n)))
            await workloads.close_sessions()
        else:  # asyncio alone can only run a blocking or CPU function inline: sequentially

            async def inline() -> None:
                call()

            await asyncio.gather(*(inline() for _ in range(n)))

    def in_executor(make: Callable[[], Executor]) -> Callable[[], Coroutine[Any, Any, None]]:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            with make() as pool:
                await asyncio.gather(*(loop.run_in_executor(pool, call) for _ in range(n)))

        return main

    threads = functools.partial(ThreadPoolExecutor, WIDTH)
    processes = functools.partial(ProcessPoolExecutor, PROCESSES, mp_context=get_context(start_method))
    return {
        "sequential": lambda: timed(sequential),
        "threads": lambda: timed(pooled(threads)),
        "processes": lambda: timed(pooled(processes)),
        "asyncio": lambda: timed_run(on_loop),
        "asyncio + threads": lambda: timed_run(in_executor(threads)),
        "asyncio + processes": lambda: timed_run(in_executor(processes)),
    }


def playbook_text(w: Workload, tag: Tag) -> str:
    kind = f"\n    kind: {tag.kind}" if tag.kind else ""
    return (
        f"name: talk table, {w.title}, {tag.label}\nsteps:\n  - id: work{kind}\n"
        f'    for_each: "{{{{ range(n) }}}}"\n    concurrency: {WIDTH}\n    {tag.action}\n'
    )


#: The tag advisor's findings per engine cell, (workload key, tag label) -> advice, from its last run.
ADVICE: dict[tuple[str, str], list[dict[str, str]]] = {}


def engine(w: Workload, tag: Tag, n: int, config: Any) -> Cell:
    """A cell that loads, plans and runs the one-step playbook for `w` tagged `tag`; the advice its
    run got is kept in `ADVICE`."""
    import orchestrator

    text = playbook_text(w, tag)
    variables = {"n": n, **w.kwargs}

    async def main() -> None:
        # A file name beside the `bench` package makes `bench.workloads` importable in workers.
        playbook = orchestrator.loads(text, file=str(ROOT / "bench-talk-table.yml"))
        result = await orchestrator.arun(playbook, vars=variables, config=config)
        await workloads.close_sessions()
        if result.status != "succeeded":
            raise RuntimeError(f"{w.key} {tag.label}: run {result.status}: {[s.error for s in result.steps]}")
        if len(result.steps[0].output) != n:
            raise RuntimeError(f"{w.key} {tag.label}: {len(result.steps[0].output)} outputs for {n} items")
        ADVICE[(w.key, tag.label)] = [a.summary() for a in result.advice]

    return lambda: timed_run(main)


def http_tag() -> Tag | None:
    """The `http` action, when the project has one (it is measured beside `call` if so)."""
    from orchestrator.actions.registry import default_registry

    if "http" not in default_registry():
        return None
    return Tag("http action (non-blocking)", None, 'http: {method: GET, url: "{{ url }}"}')


def cells_for(w: Workload, n: int, config: Any, start_method: str, http: Tag | None) -> dict[str, Cell]:
    cells = hand_written(w, n, start_method)
    cells["engine, right tag"] = engine(w, w.right, n, config)
    cells["engine, wrong tag"] = engine(w, w.wrong, n, config)
    if http is not None and w.key == "io":
        cells[HTTP_ACTION] = engine(w, http, n, config)
    return cells


def run(sizes: Sizes) -> dict[str, Any]:
    """Measure the table; returns its JSON section."""
    import orchestrator
    from orchestrator.sandbox import SandboxProcess, SandboxSettings

    config = orchestrator.load_config()
    start_method = config.executor_for("cpu").start_method
    http = http_tag()
    with SandboxProcess(SandboxSettings(latency=workloads.LATENCY)) as server:
        assert server.url is not None
        found = workloads_for(sizes, f"{server.url}/v1/networks")
        # Warm-up: imports, the server's first connections and the forkserver. The engine starts the
        # forkserver, as it does in a CLI run, so that it preloads the engine's worker module; started
        # by a ProcessPoolExecutor instead, every engine worker would import `orchestrator` itself.
        say("talk table: warming up")
        cpu = next(w for w in found if w.key == "cpu")
        engine(cpu, cpu.right, 2, config)()
        for w in found:
            for cell in cells_for(w, 2, config, start_method, http).values():
                cell()
        out: dict[str, Any] = {}
        # CPU first: it is the workload other work on the machine disturbs, and the suite has just
        # waited for the machine to be idle.
        for w in sorted(found, key=lambda w: w.sleep_bound):
            repeat, once_above = (sizes.repeat, ONCE_ABOVE) if w.sleep_bound else (sizes.cpu_repeat, math.inf)
            wait = None if w.sleep_bound or not sizes.cpu_idle_wait else lambda: wait_until_idle(sizes.cpu_idle_wait)
            say(f"talk table: {w.title}, {w.items} items, best of {repeat}")
            measured = measure_rounds(cells_for(w, w.items, config, start_method, http), repeat, once_above, wait)
            out[w.key] = summarise(w, {k: m.as_json() for k, m in measured.items()})
            out[w.key]["advice"] = {which: _said(ADVICE.get((w.key, tag.label), [])) for which, tag in (("right", w.right), ("wrong", w.wrong))}
    return {
        "width": WIDTH, "process_workers": PROCESSES, "start_method": start_method, "repeat": sizes.repeat,
        "cpu_repeat": sizes.cpu_repeat, "cpu_idle_wait_s": sizes.cpu_idle_wait,
        "statistic": "best", "once_above_s": ONCE_ABOVE,
        "targets": {"engine_over_best_max": TARGET_ENGINE_OVER_BEST, "cpu_right_over_wrong_min": TARGET_CPU_RIGHT_OVER_WRONG},
        "workloads": {w.key: out[w.key] for w in found},
    }


def summarise(w: Workload, cells: dict[str, dict[str, Any]]) -> dict[str, Any]:
    sequential = cells["sequential"]["best_s"]
    for cell in cells.values():
        cell["speedup"] = ratio(sequential, cell["best_s"])
    best = min(HAND_WRITTEN, key=lambda k: cells[k]["best_s"])
    right, wrong = cells["engine, right tag"]["best_s"], cells["engine, wrong tag"]["best_s"]
    return {
        "title": w.title, "per_item": w.per_item, "items": w.items,
        "right_tag": w.right.label, "wrong_tag": w.wrong.label, "cells": cells,
        "best_hand_written": best,
        "engine_over_best": ratio(right, cells[best]["best_s"]),
        "right_over_wrong": ratio(wrong, right),
        "processes_over_threads": ratio(cells["threads"]["best_s"], cells["processes"]["best_s"]),
    }


def _said(found: list[dict[str, Any]]) -> str:
    """A cell's advice in one line (a string, so that "none" is a value, not an empty list)."""
    return "; ".join(f"suggests {a['suggested']}: {a['evidence']}" for a in found) or "no advice"


def advice_report(section: dict[str, Any]) -> str:
    """What the engine's tag advisor said of each engine cell: the wrong tags should get advice, the
    right ones none."""
    lines = ["The engine's tag advisor, on the engine cells (wrong tags should get advice, right tags none):", ""]
    for w in section["workloads"].values():
        advice = w.get("advice", {})
        for which, label in (("right", w["right_tag"]), ("wrong", w["wrong_tag"])):
            lines.append(f"- {w['title']}, {which} tag ({label}): {advice.get(which, 'not measured')}")
    return "\n".join(lines)


def report(section: dict[str, Any]) -> str:
    """The section as Markdown: times and speed-ups, then the engine's ratios against its targets."""
    found = section["workloads"]
    names = [*HAND_WRITTEN, *ENGINE, *([HTTP_ACTION] if any(HTTP_ACTION in w["cells"] for w in found.values()) else [])]
    headers = ["strategy"] + [f"{w['title']} ({w['items']}): {col}" for w in found.values() for col in ("time", "speed-up")]
    rows = []
    for name in names:
        row: list[Any] = [name]
        for w in found.values():
            cell = w["cells"].get(name)
            row += [seconds(cell["best_s"]), times(cell["speedup"])] if cell else ["—", "—"]
        rows.append(row)
    limit, least = section["targets"]["engine_over_best_max"], section["targets"]["cpu_right_over_wrong_min"]
    ratios = []
    for key, w in found.items():
        right_over_wrong = times(w["right_over_wrong"])
        if key == "cpu":
            right_over_wrong += f" (≥ {least}: {verdict(w['right_over_wrong'] >= least)})"
        best, cells = w["best_hand_written"], w["cells"]
        ratios.append([
            w["title"], f"{best} {seconds(cells[best]['best_s'])}", seconds(cells["engine, right tag"]["best_s"]),
            f"{times(w['engine_over_best'])} ({verdict(w['engine_over_best'] <= limit)})",
            seconds(cells["engine, wrong tag"]["best_s"]), right_over_wrong,
        ])
    tags = "\n".join(
        f"- {w['title']}: {w['items']} items, {w['per_item']}, {w['cells']['sequential']['best_s'] / w['items'] * 1e3:.0f} ms "
        f"per item sequentially; right tag: {w['right_tag']}; wrong tag: {w['wrong_tag']}."
        for w in found.values()
    )
    return (
        table(headers, rows)
        + "\n\n" + advice_report(section)
        + f"\n\nSpeed-up is over `sequential` in the same run; a time is the best of {section['repeat']} interleaved "
        f"runs (I/O cells slower than {section['once_above_s']:g} s wait rather than compute, and run once). CPU cells "
        f"run {section['cpu_repeat']} times, each after waiting (up to {section['cpu_idle_wait_s']:g} s) for other work "
        f"on the machine to stop. {section['width']} items in flight (threads, semaphore, engine `concurrency`); "
        f"{section['process_workers']} worker processes ({section['start_method']}).\n\n{tags}\n\n"
        + table(["workload", "best hand-written", "engine, right tag", f"engine / best (target ≤ {limit})",
                 "engine, wrong tag", "right tag over wrong"], ratios)
    )
