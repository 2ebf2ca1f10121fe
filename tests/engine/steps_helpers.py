"""Module-level functions the engine tests send to threads and worker processes."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
import time
from typing import Any

from orchestrator.logs import get_logger


def sleep_blocking(seconds: float) -> str:
    time.sleep(seconds)
    return threading.current_thread().name


def burn(ms: int = 200) -> int:
    """Pure-Python CPU work for about `ms` milliseconds; returns the worker's pid."""
    deadline = time.perf_counter() + ms / 1000
    n = 0
    while time.perf_counter() < deadline:
        n += 1
    return os.getpid()


async def where_am_i() -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"thread": threading.current_thread().name, "main": threading.current_thread() is threading.main_thread()}


def log_from_thread(message: str) -> str:
    get_logger("tests").info("inside.blocking", message=message)
    return message


def log_from_process(message: str) -> int:
    get_logger("tests").info("inside.cpu", message=message)
    return os.getpid()


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


LIVE_TASKS: list[int] = []


async def count_tasks(item: int) -> int:
    LIVE_TASKS.append(len(asyncio.all_tasks()))
    await asyncio.sleep(0)
    return item


def fail_once(marker: str) -> str:
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    return "second attempt"


def always_fails() -> None:
    raise ValueError("boom")


async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


def record(path: str, text: str) -> str:
    with open(path, "a") as f:
        f.write(text + "\n")
    return text


unpicklable = lambda: 1  # noqa: E731 - on purpose: cannot be sent to a process


async def fail_after(seconds: float) -> None:
    await asyncio.sleep(seconds)
    raise ValueError(f"failed after {seconds}s")


def fails_first_for(item: int, marker: str) -> int:
    """Item 0 fails its first attempt; every attempt that gets through logs `inside.item`."""
    if item == 0 and not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("item 0 fails once")
    get_logger("tests").info("inside.item", item=item)
    return item


async def gc_threshold(seconds: float = 0.0) -> list[int]:
    """The garbage collector's thresholds as a step sees them, after `seconds`."""
    await asyncio.sleep(seconds)
    return list(gc.get_threshold())


_barriers: dict[str, threading.Barrier] = {}
_barriers_lock = threading.Lock()


def meet(key: str, parties: int) -> str:
    """Return once `parties` calls with this `key` are inside it at the same time: proof that they
    overlap, with no clock. Raises BrokenBarrierError if they have not all arrived within 10 s."""
    with _barriers_lock:
        barrier = _barriers.setdefault(key, threading.Barrier(parties, timeout=10))
    barrier.wait()
    return threading.current_thread().name


_signals: dict[str, asyncio.Event] = {}


async def send_signal(key: str) -> str:
    _signals.setdefault(key, asyncio.Event()).set()
    return key


async def await_signal(key: str, seconds: float = 10.0) -> str:
    """Wait until `send_signal(key)` has run (TimeoutError after `seconds`)."""
    await asyncio.wait_for(_signals.setdefault(key, asyncio.Event()).wait(), seconds)
    return key
