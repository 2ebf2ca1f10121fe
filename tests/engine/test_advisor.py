"""The tag advisor: each wrong tag of the talk's table gets the right advice, right tags and the
shipped playbooks get none.

The cells are `bench/talk_table.py`'s own playbooks and functions (`bench.workloads`), run through
the public API against a real sandbox server with 50 ms latency in its own process.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

import orchestrator
from bench import talk_table, workloads
from bench.common import ROOT
from orchestrator.sandbox import SandboxProcess, SandboxSettings

if TYPE_CHECKING:
    from collections.abc import Iterator

SIZES = talk_table.Sizes(io=8, blocking=8, cpu=8, cpu_seconds=0.03, repeat=1, cpu_repeat=1, cpu_idle_wait=0)


@pytest.fixture(scope="module")
def table() -> Iterator[list[talk_table.Workload]]:
    with SandboxProcess(SandboxSettings(latency=workloads.LATENCY)) as server:
        assert server.url is not None
        yield talk_table.workloads_for(SIZES, f"{server.url}/v1/networks")


async def run_cell(w: talk_table.Workload, tag: talk_table.Tag) -> orchestrator.RunResult:
    playbook = orchestrator.loads(talk_table.playbook_text(w, tag), file=str(ROOT / "bench-talk-table.yml"))
    result = await orchestrator.arun(playbook, vars={"n": w.items, **w.kwargs})
    await workloads.close_sessions()
    assert result.status == "succeeded", [s.error for s in result.steps]
    return result


def advice(result: orchestrator.RunResult) -> list[dict[str, Any]]:
    return list(result.summary()["advice"])


@pytest.mark.parametrize("key", ["io", "blocking", "cpu"])
async def test_a_right_tag_gets_no_advice(table: list[talk_table.Workload], key: str) -> None:
    """Work that runs where it belongs is left alone: a false alarm teaches users to ignore advice."""
    w = next(w for w in table if w.key == key)
    assert advice(await run_cell(w, w.right)) == []


@pytest.mark.parametrize(("key", "suggested"), [("io", "blocking"), ("blocking", "blocking"), ("cpu", "cpu")])
async def test_a_wrong_tag_gets_the_advice_that_fixes_it(table: list[talk_table.Workload], key: str, suggested: str) -> None:
    """A sync HTTP client or a sleeping SDK call on the event loop: `blocking`, named with the line of
    the playbook's code that held the loop. CPU work on threads: `cpu`."""
    w = next(w for w in table if w.key == key)
    found = advice(await run_cell(w, w.wrong))
    assert [(a["step"], a["tagged"], a["suggested"]) for a in found] == [("work", w.wrong.kind, suggested)]
    if key != "cpu":
        assert "held the event loop" in found[0]["evidence"]
        assert "bench/workloads.py:" in found[0]["evidence"]
    else:
        assert "GIL" in found[0]["evidence"]


async def test_a_cpu_step_whose_workers_wait_is_told_to_use_threads() -> None:
    """A sleeping SDK call sent to worker processes: they mostly wait, so `blocking` would do."""
    text = textwrap.dedent("""
        name: waiting on processes
        steps:
          - id: sdk
            kind: cpu
            for_each: "{{ range(4) }}"
            concurrency: 2
            call: bench.workloads:sdk_call
            with: {seconds: 0.05}
        """)
    result = await orchestrator.arun(orchestrator.loads(text, file=str(ROOT / "bench-advice.yml")))
    assert result.status == "succeeded"
    assert [(a["step"], a["tagged"], a["suggested"]) for a in advice(result)] == [("sdk", "cpu", "blocking")]


async def test_cpu_work_on_a_machine_busy_with_other_programs_is_not_told_to_use_threads() -> None:
    """Six programs spinning on two cores give the step's workers a third of a core or less: little
    CPU time for their calls' time, as waiting would. But the calls were preempted, never blocked,
    so no advice: the tag is right, the machine is busy."""
    text = textwrap.dedent("""
        name: cpu on a busy machine
        steps:
          - id: spin
            kind: cpu
            for_each: "{{ range(4) }}"
            concurrency: 2
            call: bench.workloads:spin
            with: {rounds: ROUNDS}
        """).replace("ROUNDS", str(workloads.calibrate(0.08)))
    hogs = [await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass") for _ in range(3 * (os.cpu_count() or 1))]
    try:
        result = await orchestrator.arun(orchestrator.loads(text, file=str(ROOT / "bench-advice.yml")))
    finally:
        for hog in hogs:
            hog.kill()
            await hog.wait()
    assert result.status == "succeeded"
    assert result.timeline is not None
    spans = result.timeline.items["spin"]
    assert sum(s.cpu or 0.0 for s in spans) < 0.5 * sum(s.ended - s.started for s in spans), "the machine was not busy"
    assert advice(result) == []


async def test_a_thread_pool_too_small_for_the_step_says_which_setting_to_raise(tmp_path: Any) -> None:
    """Items queued for a thread most of the step: raise `executors.blocking.workers`."""
    config = tmp_path / "config.yml"
    config.write_text(
        "executors:\n  non-blocking: {type: asyncio}\n  blocking: {type: threads, workers: 2}\n"
        "  cpu: {type: processes, workers: auto}\n"
    )
    text = textwrap.dedent("""
        name: small pool
        steps:
          - id: sdk
            kind: blocking
            for_each: "{{ range(16) }}"
            concurrency: 16
            call: bench.workloads:sdk_call
            with: {seconds: 0.03}
        """)
    playbook = orchestrator.loads(text, file=str(ROOT / "bench-advice.yml"))
    result = await orchestrator.arun(playbook, config=orchestrator.load_config(str(config)))
    found = advice(result)
    assert [(a["step"], a["tagged"], a["suggested"]) for a in found] == [("sdk", "blocking", "blocking")]
    assert "executors.blocking.workers" in found[0]["evidence"]


@pytest.mark.parametrize("name", ["deploy.yml", "mixed.yml"])
def test_the_shipped_playbooks_get_no_advice(name: str) -> None:
    """The shipped playbooks tag every step right: no advice, on a run of each against the sandbox."""
    from orchestrator.target import embedded_target

    plan = orchestrator.plan(ROOT / "playbooks" / name)
    with embedded_target(plan, given={}) as target:
        result = orchestrator.run(plan, settings=target)
    assert result.status == "succeeded"
    assert result.summary()["advice"] == []
