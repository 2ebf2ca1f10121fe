"""Module-level functions for tests/engine/test_across_executors.py, called by `call:` steps.

They run on the event loop, on a pool thread, in a worker process or on a Dask worker, so they share
nothing through module globals: every bit of state goes through files whose paths they are given.
Each has a plain version (threads, processes, dask) and an `a_` coroutine version (asyncio) that
behaves the same without blocking the loop.

The event log a function appends to has one line per event, written with a single O_APPEND write,
so the order of its lines is the order in which the events happened, whichever process wrote them:
`start NAME PID` when a call begins, `end NAME PID` when it returns.
"""

from __future__ import annotations

import asyncio
import os
import time


def note(log: str, event: str, name: str) -> None:
    """Append `event name pid` to the event log in one write."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{event} {name} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def _starts(log: str) -> int:
    try:
        with open(log) as f:
            return sum(1 for line in f if line.startswith("start "))
    except FileNotFoundError:
        return 0


def _log_has(log: str, line_start: str) -> bool:
    try:
        with open(log) as f:
            return any(line.startswith(line_start) for line in f)
    except FileNotFoundError:
        return False


# --- record: start, optionally hold for a moment, end -------------------------------------------


def record(log: str, name: str, value: object = None, hold: float = 0.0) -> object:
    """Note the start, wait `hold` seconds, note the end; return `value`."""
    note(log, "start", name)
    time.sleep(hold)
    note(log, "end", name)
    return value


async def a_record(log: str, name: str, value: object = None, hold: float = 0.0) -> object:
    note(log, "start", name)
    await asyncio.sleep(hold)
    note(log, "end", name)
    return value


# --- meet: a rendezvous that proves calls overlap, without relying on how long anything takes ----


def meet(log: str, name: str, starts: int = 2, wait: float = 10.0) -> str:
    """Note the start, then stay until the log holds `starts` start lines (or `wait` seconds pass).

    Calls that run concurrently see each other's start and end promptly, with their intervals
    overlapping; calls run one after another cannot overlap: the first one waits out `wait` and ends
    before the next one starts."""
    note(log, "start", name)
    deadline = time.monotonic() + wait
    while _starts(log) < starts and time.monotonic() < deadline:
        time.sleep(0.005)
    note(log, "end", name)
    return name


async def a_meet(log: str, name: str, starts: int = 2, wait: float = 10.0) -> str:
    note(log, "start", name)
    deadline = time.monotonic() + wait
    while _starts(log) < starts and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    note(log, "end", name)
    return name


# --- failures -----------------------------------------------------------------------------------


def fail_once_started(log: str, other: str, message: str, wait: float = 10.0) -> None:
    """Raise ValueError(message) as soon as `other` has started (so it is running when this fails)."""
    deadline = time.monotonic() + wait
    while not _log_has(log, f"start {other} ") and time.monotonic() < deadline:
        time.sleep(0.005)
    raise ValueError(message)


async def a_fail_once_started(log: str, other: str, message: str, wait: float = 10.0) -> None:
    deadline = time.monotonic() + wait
    while not _log_has(log, f"start {other} ") and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    raise ValueError(message)


def always_fails(counter: str, message: str) -> None:
    """Count the attempt (one line in `counter`), then raise ValueError(message)."""
    note(counter, "attempt", "always")
    raise ValueError(message)


async def a_always_fails(counter: str, message: str) -> None:
    always_fails(counter, message)


def fails_before(counter: str, succeed_on: int) -> int:
    """Count the attempt; attempts before number `succeed_on` raise, that one returns its number."""
    note(counter, "attempt", "flaky")
    with open(counter) as f:
        attempt = sum(1 for _ in f)
    if attempt < succeed_on:
        raise RuntimeError(f"attempt {attempt} fails")
    return attempt


async def a_fails_before(counter: str, succeed_on: int) -> int:
    return fails_before(counter, succeed_on)


# --- hang: a long call, which a test releases when it is over -----------------------------------


def hang(log: str, name: str, release: str, seconds: float = 10.0) -> str:
    """Note the start, then run for `seconds` (or until the file `release` exists), note the end.

    The tests create `release` when they are done, so a call the engine failed to stop (a thread
    cannot be stopped) does not keep a thread or a Dask worker busy into the next test."""
    note(log, "start", name)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not os.path.exists(release):
        time.sleep(0.02)
    note(log, "end", name)
    return name


async def a_hang(log: str, name: str, release: str, seconds: float = 10.0) -> str:
    note(log, "start", name)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not os.path.exists(release):
        await asyncio.sleep(0.02)
    note(log, "end", name)
    return name
