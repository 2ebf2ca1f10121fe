"""Every run can be stopped: a `for_each` whose items never wait (`set`, `log`, `assert`, a plain
function on the loop) still gives the event loop its turns, so the run's timeout, an interrupt,
SIGINT and SIGTERM end it within a fraction of a second, the step that was running ends
`cancelled` saying why and how far it got, and `finally` runs. A fan-out over ``range(10**12)``
allocates nothing for the items it never reaches.

The first tests are real `orchestrate` processes (the bounds are the issue's); the others run
through the API."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import orchestrator
from orchestrator.engine import fanout as fanout_module
from tests.cli.test_cli import _wait_for_event

ROOT = Path(__file__).resolve().parents[2]
H = "tests.engine.steps_helpers"

ENDLESS = """
name: endless
vars:
  marker: /nonexistent/marker
steps:
  - id: fill
    for_each: "{{ range(10**12) }}"
    set: "{{ item }}"
finally:
  - id: mark
    shell: {argv: [touch, "{{ marker }}"]}
"""


def _orchestrate(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "orchestrate"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "orchestrator.cli.main", *args]


def _start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
    playbook, marker = tmp_path / "endless.yml", tmp_path / "finally-ran"
    playbook.write_text(ENDLESS)
    command = _orchestrate(str(playbook), "--var", f"marker={marker}", *args)
    # On a pipe the summary is as wide as it needs, unless COLUMNS says otherwise (pytest sets it).
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env), marker


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_run_timeout_stops_an_endless_fan_out_of_set_and_says_so(tmp_path: Path, fmt: str) -> None:
    """`--timeout 2s` on a `for_each` over range(10**12) of `set`: exit 1 within 4 s, the step
    `cancelled` with "the run's timeout of 2s passed" in the summary (and the JSON), `finally` run."""
    started = time.monotonic()
    proc, marker = _start(tmp_path, "--timeout", "2s", "--format", fmt)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, err
    assert elapsed < 4, f"exited after {elapsed:.1f}s"
    assert marker.exists(), "`finally` did not run"
    if fmt == "json":
        result = json.loads(out)
        steps = {s["id"]: s for s in result["steps"]}
        assert result["status"] == "failed"
        fill = steps["fill"]
        assert fill["status"] == "cancelled", fill
        assert fill["error"].startswith("cancelled: the run's timeout of 2s passed; "), fill["error"]
        assert fill["error"].endswith(" of 1,000,000,000,000 items done"), fill["error"]
        assert fill["items"] > 0 and fill["items_failed"] == 0
        assert steps["mark"]["status"] == "succeeded"
    else:
        assert "endless: failed" in out
        assert "cancelled: the run's timeout of 2s passed" in out, out
    assert '"event": "run.timed_out"' in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_an_endless_fan_out_of_set(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGINT or SIGTERM 1 s into the same run: exit 130 within 2 s of the signal, the step
    `cancelled` because the run was interrupted, `finally` run."""
    started = time.monotonic()
    proc, marker = _start(tmp_path, "--format", "json")
    try:
        assert proc.stderr is not None
        _wait_for_event(proc.stderr, "step.started", "fill")  # the handlers are in place
        time.sleep(max(0.0, 1 - (time.monotonic() - started)))  # waiting for the moment the issue names
        proc.send_signal(sig)
        signalled = time.monotonic()
        out, _ = proc.communicate(timeout=30)
        after = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert after < 2, f"exited {after:.1f}s after the signal"
    assert marker.exists(), "`finally` did not run"
    result = json.loads(out)
    steps = {s["id"]: s for s in result["steps"]}
    assert result["status"] == "interrupted"
    assert steps["fill"]["status"] == "cancelled"
    assert steps["fill"]["error"].startswith("cancelled: the run was interrupted; "), steps["fill"]["error"]
    assert steps["mark"]["status"] == "succeeded"


# --- through the API ------------------------------------------------------------------------------


async def test_steps_beside_a_fan_out_that_never_waits_still_run() -> None:
    """A 50 ms `sleep` step beside an endless `set` fan-out ends in well under a second: the fan-out
    gives the loop its turns. The run timeout then cancels the fan-out, which keeps the outputs of
    the items it ran (an entry per item taken, None for one that did not run)."""
    plan = orchestrator.loads("""
name: beside
steps:
  - id: fill
    for_each: "{{ range(10**12) }}"
    set: "{{ item }}"
  - id: nap
    sleep: 50ms
finally:
  - id: last
    set: "{{ steps.fill.status }}"
""")
    started = time.monotonic()
    result = await orchestrator.arun(plan, timeout=1)
    assert time.monotonic() - started < 3
    nap, fill = result.step("nap"), result.step("fill")
    assert nap.status == "succeeded" and nap.duration_s < 0.5, nap
    assert result.status == "failed"
    assert fill.status == "cancelled" and fill.error is not None
    assert fill.error.startswith("cancelled: the run's timeout of 1s passed; "), fill.error
    assert fill.items is not None and fill.items > 1000
    output = fill.output
    assert isinstance(output, list) and fill.items <= len(output) <= fill.items + 100  # at most one item per worker not run
    assert all(value in (index, None) for index, value in enumerate(output))
    assert sum(value is not None for value in output) == fill.items
    assert result.step("last").output == "cancelled"


async def test_a_step_timeout_beside_a_fan_out_that_never_waits_still_fires() -> None:
    """A step whose attempt is bounded by `timeout: 200ms` fails on time beside an endless `set`
    fan-out (its deadline is a timer, which needs the loop's turns), and fails the run."""
    plan = orchestrator.loads("""
name: bounded beside
steps:
  - id: fill
    for_each: "{{ range(10**12) }}"
    set: "{{ item }}"
  - id: bounded
    timeout: 200ms
    sleep: 5s
""")
    started = time.monotonic()
    result = await orchestrator.arun(plan, timeout=10)
    assert time.monotonic() - started < 2
    bounded = result.step("bounded")
    assert bounded.status == "failed" and bounded.error == "attempt timed out after 0.2s", bounded.error
    fill = result.step("fill")
    assert fill.status == "cancelled"
    assert fill.error is not None and fill.error.startswith("cancelled: step 'bounded' failed; "), fill.error


async def test_an_interrupt_stops_an_endless_fan_out_and_finally_runs() -> None:
    """Setting `interrupt` while an endless `set` fan-out runs ends the run `interrupted` promptly."""
    plan = orchestrator.loads(ENDLESS.replace('shell: {argv: [touch, "{{ marker }}"]}', "set: done"))
    interrupt = asyncio.Event()
    running = asyncio.ensure_future(orchestrator.arun(plan, interrupt=interrupt))
    await asyncio.sleep(0.3)  # the fan-out is under way: this wait itself needs the loop's turns
    interrupt.set()
    asked = time.monotonic()
    result = await running
    assert time.monotonic() - asked < 0.5
    assert result.status == "interrupted" and result.exit_code == 130
    fill = result.step("fill")
    assert fill.status == "cancelled" and fill.error is not None
    assert fill.error.startswith("cancelled: the run was interrupted; "), fill.error
    assert result.step("mark").status == "succeeded"


async def test_a_failure_in_an_endless_fan_out_keeps_an_entry_per_item_taken() -> None:
    """An item of range(10**12) that fails stops the step as usual; its output lists the items
    taken, not 10**12 of them (which no memory would hold)."""
    plan = orchestrator.loads("""
name: bounded failure
steps:
  - id: check
    for_each: "{{ range(10**12) }}"
    concurrency: 4
    assert: {that: "{{ item < 1000 }}"}
""")
    result = await orchestrator.arun(plan)
    check = result.step("check")
    assert check.status == "failed" and check.error is not None
    assert check.error.startswith("1 of 1000000000000 items failed"), check.error
    assert isinstance(check.output, list) and 1001 <= len(check.output) <= 1004
    assert check.output[:1000] == [True] * 1000 and check.output[1000] is None


async def test_outputs_beyond_the_preallocated_size_grow_and_end_at_the_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past `_PREALLOCATED` items the outputs list grows as items finish: a step that runs every
    item has exactly one entry per item, whether its sequence has a length or not."""
    monkeypatch.setattr(fanout_module, "_PREALLOCATED", 8)
    plan = orchestrator.loads("""
name: growing
steps:
  - id: sized
    for_each: "{{ range(100) }}"
    set: "{{ item }}"
  - id: unsized
    for_each: "{{ range(3000) | map('string') }}"
    concurrency: 7
    set: "{{ item }}"
""")
    result = await orchestrator.arun(plan)
    assert result.status == "succeeded"
    assert result.step("sized").output == list(range(100))
    assert result.step("unsized").output == [str(n) for n in range(3000)]
    assert result.step("unsized").items == 3000


async def test_a_failure_in_an_unsized_fan_out_lists_the_items_taken() -> None:
    """A sequence without a length (a generator) that fails: one entry per item taken from it."""
    plan = orchestrator.loads("""
name: unsized failure
steps:
  - id: check
    for_each: "{{ range(5000) | map('int') }}"
    concurrency: 1
    assert: {that: "{{ item != 2500 }}"}
""")
    result = await orchestrator.arun(plan)
    check = result.step("check")
    assert check.status == "failed" and check.items == 2501 and check.items_failed == 1
    assert check.output == [True] * 2500 + [None]


async def test_a_timeout_seen_between_steps_names_itself_on_the_steps_it_keeps_from_starting() -> None:
    """A call that holds the loop past the run's timeout cannot be cut short. The steps that ended
    before the timeout was seen count; the step it then keeps from starting says why."""
    plan = orchestrator.loads(f"""
name: held
steps:
  - {{id: hold, kind: non-blocking, call: '{H}:sleep_blocking', with: {{seconds: 0.5}}}}
  - {{id: next, needs: [hold], set: 1}}
  - {{id: last, needs: [next], set: 2}}
""")
    result = await orchestrator.arun(plan, timeout=0.2)
    assert result.status == "failed"
    assert [(s.id, s.status) for s in result.steps] == [("hold", "succeeded"), ("next", "succeeded"), ("last", "cancelled")]
    assert result.step("last").error == "not started: the run's timeout of 0.2s passed"


async def test_a_run_whose_steps_all_ended_before_its_timeout_was_seen_succeeded() -> None:
    """Nothing was left to stop: the run's status is its steps'."""
    plan = orchestrator.loads(f"""
name: held to the end
steps:
  - {{id: hold, kind: non-blocking, call: '{H}:sleep_blocking', with: {{seconds: 0.4}}}}
""")
    result = await orchestrator.arun(plan, timeout=0.2)
    assert result.status == "succeeded" and result.step("hold").status == "succeeded"
