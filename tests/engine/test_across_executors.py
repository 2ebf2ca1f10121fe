"""The engine's behaviours as specifications, each checked on every executor type a step can run on:
the event loop (`asyncio`), a thread pool (`threads`), a process pool (`processes`) and a Dask
cluster (`dask`, a LocalCluster the session starts).

The steps are `call:` steps of tests/engine/across_funcs.py. They share state through files only:
each call appends `start NAME PID` and `end NAME PID` lines to an event log with single O_APPEND
writes, so the order of the lines is the order of the events, whichever process wrote them. The tests
compare those orders (what ended before what started, what overlapped), never durations; the one
exception is a loose "well before 10 s" bound on timeouts.
"""

from __future__ import annotations

import asyncio
import json
import string
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil
import pytest

import orchestrator
from orchestrator.config import Config, loads_config

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

FUNCS = "tests.engine.across_funcs"


@dataclass(frozen=True)
class Where:
    """An executor type under test: the `kind` its steps declare, the configuration that sends that
    kind there, and whether its calls are coroutine functions (the `a_` versions, for asyncio)."""

    name: str
    kind: str
    config: Config
    coroutines: bool

    def playbook(self, text: str, **paths: Path) -> str:
        """`text` with `$kind` and `$fn` (the functions' module, and prefix) filled in for this
        executor, and each `$name` in `paths` replaced by that path as a quoted YAML string."""
        fn = f"{FUNCS}:a_" if self.coroutines else f"{FUNCS}:"
        quoted = {name: json.dumps(str(path)) for name, path in paths.items()}
        return string.Template(text).substitute(kind=self.kind, fn=fn, **quoted)


def executors_config(cpu: str) -> Config:
    return loads_config(f"""
executors:
  non-blocking: {{type: asyncio}}
  blocking: {{type: threads}}
  cpu: {cpu}
""")


@pytest.fixture(params=["asyncio", "threads", "processes", "dask"])
def where(request: pytest.FixtureRequest) -> Where:
    """Each executor type in turn (the Dask cluster starts only for the dask cases)."""
    name: str = request.param
    if name == "asyncio":
        return Where(name, "non-blocking", executors_config("{type: processes, workers: 2}"), coroutines=True)
    if name == "threads":
        return Where(name, "blocking", executors_config("{type: processes, workers: 2}"), coroutines=False)
    if name == "processes":
        return Where(name, "cpu", executors_config("{type: processes, workers: 2}"), coroutines=False)
    address: str = request.getfixturevalue("dask_scheduler")
    return Where(name, "cpu", executors_config(f'{{type: dask, address: "{address}"}}'), coroutines=False)


@pytest.fixture
def release(tmp_path: Path) -> Iterator[Path]:
    """The file that ends the test's `hang` calls; created when the test ends, so that a call the
    engine could not stop keeps no thread or Dask worker busy into the next test."""
    path = tmp_path / "release"
    yield path
    path.touch()


async def run(
    where: Where,
    text: str,
    tmp_path: Path,
    *,
    interrupt: asyncio.Event | None = None,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
    timeout: float | None = None,
) -> orchestrator.RunResult:
    """Load, plan (every step on `where`'s executor) and run the playbook `text`."""
    plan = orchestrator.plan(orchestrator.loads(text, file=str(tmp_path / "playbook.yml")), config=where.config)
    assert {step.executor for step in plan.all_steps()} == {where.name}
    result = await orchestrator.arun(plan, interrupt=interrupt, sleep=sleep, timeout=timeout)
    assert {step.executor for step in result.steps} == {where.name}
    return result


# --- reading the event log ----------------------------------------------------------------------

Event = tuple[str, str]  # ("start" | "end", name)


def events(log: Path) -> list[Event]:
    if not log.exists():
        return []
    return [(event, name) for event, name, _pid in (line.split() for line in log.read_text().splitlines())]


def at(seen: list[Event], event: str, name: str) -> int:
    assert (event, name) in seen, f"no `{event} {name}` in {seen}"
    return seen.index((event, name))


def overlap(seen: list[Event], a: str, b: str) -> bool:
    """Whether calls `a` and `b` were both in flight at some moment."""
    return at(seen, "start", a) < at(seen, "end", b) and at(seen, "start", b) < at(seen, "end", a)


def most_in_flight(seen: list[Event]) -> int:
    now = most = 0
    for event, _name in seen:
        now += 1 if event == "start" else -1
        most = max(most, now)
    return most


def pids(log: Path, name: str) -> set[int]:
    """The pids that noted the start of call `name`."""
    lines = log.read_text().splitlines() if log.exists() else []
    return {int(pid) for event, who, pid in (line.split() for line in lines) if (event, who) == ("start", name)}


def alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


async def until_started(log: Path, name: str, run: asyncio.Future[orchestrator.RunResult]) -> None:
    """Wait until call `name` has noted its start (a test failure, not a hang, if it never does)."""
    deadline = time.monotonic() + 30
    while ("start", name) not in events(log):
        assert not run.done(), f"the run ended before `{name}` started: {run.result()}"
        assert time.monotonic() < deadline, f"`{name}` did not start within 30 s"
        await asyncio.sleep(0.01)


async def assert_stopped(where: Where, log: Path, name: str, release: Path) -> None:
    """The cancelled call `name` does not go on after the run: released now, a `hang` call still
    running would note its end within a few hundredths of a second. On `processes`, the worker that
    ran it is gone too. (`threads` are exempt: a thread cannot be stopped, as docs/configuration.md
    says, and the step is reported cancelled while its thread runs on.)"""
    if where.name == "threads":
        return
    if where.name == "processes":
        assert not [pid for pid in pids(log, name) if alive(pid)], "the worker process running the call is still alive"
    release.touch()
    await asyncio.sleep(0.3)
    assert ("end", name) not in events(log), f"`{name}` went on running on {where.name} after it was cancelled"


class VirtualSleep:
    """An injected `sleep` that records the waits asked for and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# --- 1. ordering --------------------------------------------------------------------------------


async def test_a_step_starts_after_what_it_needs_and_reads_and_independent_steps_overlap(where: Where, tmp_path: Path) -> None:
    """A step starts only after the steps it `needs` and the steps whose output it reads have ended, its template sees their outputs, and independent steps are in flight together."""
    log = tmp_path / "events"
    text = where.playbook("""
name: ordering
steps:
  - {id: a, kind: $kind, call: ${fn}meet, with: {log: $log, name: a}}
  - {id: b, kind: $kind, call: ${fn}meet, with: {log: $log, name: b}}
  - {id: c, kind: $kind, needs: [a], call: ${fn}record, with: {log: $log, name: c, value: from-c}}
  - id: d
    kind: $kind
    call: ${fn}record
    with: {log: $log, name: d, value: "{{ steps.b.output }} and {{ steps.c.output }}"}
""", log=log)
    result = await run(where, text, tmp_path)
    assert result.status == "succeeded", [(s.id, s.error) for s in result.steps]
    seen = events(log)
    assert overlap(seen, "a", "b"), seen
    assert at(seen, "end", "a") < at(seen, "start", "c"), seen  # needs
    assert at(seen, "end", "b") < at(seen, "start", "d"), seen  # reads b's output
    assert at(seen, "end", "c") < at(seen, "start", "d"), seen  # reads c's output
    assert result.step("d").output == "b and from-c"


# --- 2. failure ---------------------------------------------------------------------------------


async def test_a_failed_step_fails_the_run_cancels_its_running_sibling_then_rollback_and_finally_run(
    where: Where, tmp_path: Path, release: Path
) -> None:
    """A failing step fails the run (exit code 1) with the exception's message in its error, cancels the sibling still running, starts none of its dependents, then `rollback` and `finally` run, in that order."""
    log = tmp_path / "events"
    text = where.playbook("""
name: failure
steps:
  - {id: long, kind: $kind, call: ${fn}hang, with: {log: $log, name: long, release: $release}}
  - {id: broken, kind: $kind, call: ${fn}fail_once_started, with: {log: $log, other: long, message: disk on fire}}
  - {id: after, kind: $kind, needs: [broken], call: ${fn}record, with: {log: $log, name: after}}
rollback:
  - {id: undo, kind: $kind, call: ${fn}record, with: {log: $log, name: undo, value: "{{ steps.broken.status }}"}}
finally:
  - {id: cleanup, kind: $kind, call: ${fn}record, with: {log: $log, name: cleanup}}
""", log=log, release=release)
    result = await run(where, text, tmp_path)
    assert result.status == "failed" and result.exit_code == 1
    broken = result.step("broken")
    assert broken.status == "failed" and broken.error is not None and "disk on fire" in broken.error
    long = result.step("long")
    assert long.status == "cancelled" and long.error == "cancelled: step 'broken' failed"
    assert result.step("after").status == "cancelled" and result.step("after").error == "not started"
    assert (result.step("undo").status, result.step("undo").output) == ("succeeded", "failed")
    assert result.step("cleanup").status == "succeeded"
    seen = events(log)
    assert ("start", "after") not in seen
    assert at(seen, "end", "undo") < at(seen, "start", "cleanup"), seen
    await assert_stopped(where, log, "long", release)


async def test_on_error_continue_lets_dependents_run_and_the_run_succeed(where: Where, tmp_path: Path) -> None:
    """A failing step with `on_error: continue` fails alone: its dependents run and see its status, the run succeeds and `rollback` is skipped."""
    log, counter = tmp_path / "events", tmp_path / "attempts"
    text = where.playbook("""
name: tolerant
steps:
  - {id: flaky, kind: $kind, on_error: continue, call: ${fn}always_fails, with: {counter: $counter, message: flaky broke}}
  - id: next
    kind: $kind
    needs: [flaky]
    call: ${fn}record
    with: {log: $log, name: next, value: "{{ steps.flaky.status }}"}
rollback:
  - {id: undo, kind: $kind, call: ${fn}record, with: {log: $log, name: undo}}
""", log=log, counter=counter)
    result = await run(where, text, tmp_path)
    assert result.status == "succeeded" and result.exit_code == 0
    flaky = result.step("flaky")
    assert flaky.status == "failed" and flaky.error is not None and "flaky broke" in flaky.error
    assert (result.step("next").status, result.step("next").output) == ("succeeded", "failed")
    assert result.step("undo").status == "skipped"


# --- 3. cancellation ----------------------------------------------------------------------------


async def test_an_interrupt_cancels_the_running_step_and_finally_still_runs(where: Where, tmp_path: Path, release: Path) -> None:
    """Setting `interrupt` while a step runs ends the run `interrupted` (exit code 130) with that step cancelled and its call stopped (on processes, its worker gone), and `finally` still runs."""
    log = tmp_path / "events"
    text = where.playbook("""
name: interrupted
steps:
  - {id: hang, kind: $kind, call: ${fn}hang, with: {log: $log, name: hang, release: $release}}
  - {id: later, kind: $kind, needs: [hang], call: ${fn}record, with: {log: $log, name: later}}
finally:
  - {id: cleanup, kind: $kind, call: ${fn}record, with: {log: $log, name: cleanup}}
""", log=log, release=release)
    interrupt = asyncio.Event()
    running = asyncio.ensure_future(run(where, text, tmp_path, interrupt=interrupt))
    await until_started(log, "hang", running)
    interrupt.set()
    result = await running
    assert result.status == "interrupted" and result.exit_code == 130
    hang = result.step("hang")
    assert hang.status == "cancelled" and hang.error == "cancelled: the run was interrupted"
    assert result.step("later").status == "cancelled" and result.step("later").error == "not started"
    assert result.step("cleanup").status == "succeeded"
    assert ("end", "cleanup") in events(log)
    await assert_stopped(where, log, "hang", release)


# --- 4. timeouts --------------------------------------------------------------------------------


async def test_a_step_timeout_fails_a_long_call_well_before_it_would_end(where: Where, tmp_path: Path, release: Path) -> None:
    """A step `timeout: 0.3s` around a call of about 10 s fails the step and the run with a "timed out" error well before 10 s, and the call does not go on."""
    log = tmp_path / "events"
    text = where.playbook("""
name: step timeout
steps:
  - {id: hang, kind: $kind, timeout: 0.3s, call: ${fn}hang, with: {log: $log, name: hang, release: $release, seconds: 10}}
""", log=log, release=release)
    started = time.monotonic()
    result = await run(where, text, tmp_path)
    elapsed = time.monotonic() - started
    assert result.status == "failed" and result.exit_code == 1
    hang = result.step("hang")
    assert hang.status == "failed" and hang.error is not None and "timed out" in hang.error, hang.error
    assert elapsed < 5, f"the run took {elapsed:.1f}s: the timeout did not end the call's step"
    await assert_stopped(where, log, "hang", release)


async def test_the_run_timeout_fails_the_run_and_cancels_the_running_step(where: Where, tmp_path: Path, release: Path) -> None:
    """`arun(timeout=...)` passing while a step runs fails the run (exit code 1) with that step cancelled, saying why, and its call stopped; `finally` still runs."""
    log = tmp_path / "events"
    text = where.playbook("""
name: run timeout
steps:
  - {id: hang, kind: $kind, call: ${fn}hang, with: {log: $log, name: hang, release: $release, seconds: 10}}
finally:
  - {id: cleanup, kind: $kind, call: ${fn}record, with: {log: $log, name: cleanup}}
""", log=log, release=release)
    started = time.monotonic()
    result = await run(where, text, tmp_path, timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.status == "failed" and result.exit_code == 1
    hang = result.step("hang")
    assert hang.status == "cancelled" and hang.error == "cancelled: the run's timeout of 0.5s passed"
    assert result.step("cleanup").status == "succeeded"
    assert elapsed < 5, f"the run took {elapsed:.1f}s: its timeout did not end it"
    await assert_stopped(where, log, "hang", release)


# --- 5. retries ---------------------------------------------------------------------------------


async def test_a_call_that_fails_twice_then_succeeds_is_retried_to_success(where: Where, tmp_path: Path) -> None:
    """A call failing its first two attempts succeeds on the third (`attempts == 3`), after the policy's waits, taken from the injected sleep."""
    counter = tmp_path / "attempts"
    text = where.playbook("""
name: retried
steps:
  - id: flaky
    kind: $kind
    retry: {attempts: 5, backoff: exponential, delay: 1s, max_delay: 60s, jitter: false}
    call: ${fn}fails_before
    with: {counter: $counter, succeed_on: 3}
""", counter=counter)
    sleep = VirtualSleep()
    result = await run(where, text, tmp_path, sleep=sleep)
    assert result.status == "succeeded"
    flaky = result.step("flaky")
    assert (flaky.status, flaky.attempts, flaky.output) == ("succeeded", 3, 3)
    assert sleep.waits == [1.0, 2.0]
    assert len(counter.read_text().splitlines()) == 3


async def test_a_call_that_always_fails_fails_after_every_attempt(where: Where, tmp_path: Path) -> None:
    """A call that always fails is attempted `retry.attempts` times, then fails the step and the run, with the policy's waits between attempts."""
    counter = tmp_path / "attempts"
    text = where.playbook("""
name: hopeless
steps:
  - id: hopeless
    kind: $kind
    retry: {attempts: 4, backoff: exponential, delay: 1s, max_delay: 60s, jitter: false}
    call: ${fn}always_fails
    with: {counter: $counter, message: still broken}
""", counter=counter)
    sleep = VirtualSleep()
    result = await run(where, text, tmp_path, sleep=sleep)
    assert result.status == "failed" and result.exit_code == 1
    hopeless = result.step("hopeless")
    assert hopeless.status == "failed" and hopeless.attempts == 4
    assert hopeless.error is not None and "still broken" in hopeless.error
    assert sleep.waits == [1.0, 2.0, 4.0]
    assert len(counter.read_text().splitlines()) == 4


# --- 6. limits ----------------------------------------------------------------------------------


async def test_a_limit_of_one_keeps_a_fan_out_to_one_item_in_flight(where: Where, tmp_path: Path) -> None:
    """A `for_each` of 8 items naming a limit with `concurrency: 1` never has two items in flight, whatever the step's own concurrency."""
    log = tmp_path / "events"
    text = where.playbook("""
name: limited
limits:
  one-at-a-time: {concurrency: 1}
steps:
  - id: items
    kind: $kind
    for_each: "{{ range(8) }}"
    concurrency: 8
    limit: one-at-a-time
    call: ${fn}record
    with: {log: $log, name: "item{{ item }}", value: "{{ item }}", hold: 0.05}
""", log=log)
    result = await run(where, text, tmp_path)
    assert result.status == "succeeded", result.step("items").error
    assert result.step("items").output == list(range(8))
    seen = events(log)
    assert len(seen) == 16 and most_in_flight(seen) == 1, seen


async def test_a_fan_out_without_a_limit_has_several_items_in_flight(where: Where, tmp_path: Path) -> None:
    """A `for_each` of 8 items with `concurrency: 3` and no limit has more than one item in flight at some point, and never more than 3."""
    log = tmp_path / "events"
    text = where.playbook("""
name: fan out
steps:
  - id: items
    kind: $kind
    for_each: "{{ range(8) }}"
    concurrency: 3
    call: ${fn}meet
    with: {log: $log, name: "item{{ item }}"}
""", log=log)
    result = await run(where, text, tmp_path)
    assert result.status == "succeeded", result.step("items").error
    assert result.step("items").output == [f"item{i}" for i in range(8)]
    seen = events(log)
    assert len(seen) == 16 and 2 <= most_in_flight(seen) <= 3, seen
