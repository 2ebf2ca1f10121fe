"""The work the benchmarks time: module-level functions that the engine (through `call:`) and the
hand-written baselines both run, so both sides do exactly the same thing per item.

Everything here is importable in a worker process and picklable by reference; heavy imports
(aiohttp) happen inside the function that needs them.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

LATENCY = 0.05  # seconds: the server's latency and the blocking SDK stand-in's sleep


def noop() -> None:
    """A blocking/cpu no-op: what dispatch costs when the work costs nothing."""
    return None


async def noop_async() -> None:
    """A coroutine no-op."""
    return None


def spin(rounds: int) -> int:
    """Pure-Python CPU work: holds the GIL throughout, no C fast path."""
    total = 0
    for i in range(rounds):
        total += i * i % 7
    return total


def calibrate(seconds: float) -> int:
    """Rounds of `spin` that take about `seconds` on this machine (best of three timings)."""
    rounds = 20_000
    while True:
        elapsed = min(_time_spin(rounds) for _ in range(3))
        if elapsed > 0.02:
            return max(1, round(rounds * seconds / elapsed))
        rounds *= 2


def _time_spin(rounds: int) -> float:
    started = time.perf_counter()
    spin(rounds)
    return time.perf_counter() - started


def sdk_call(seconds: float = LATENCY) -> float:
    """Blocking I/O stand-in: a synchronous SDK call that holds its thread while it waits."""
    time.sleep(seconds)
    return seconds


def fetch_sync(url: str) -> int:
    """One GET with the standard library's synchronous client (a new connection each time, as
    `urllib` does); returns the status."""
    import urllib.request

    # No proxy: the server is on 127.0.0.1 and the environment's proxy settings must not matter.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        response.read()
        return int(response.status)


# A `call:` function gets no run context, so it keeps one pooled session per event loop, as an
# async SDK would; `close_sessions` ends them (the benchmark calls it inside the timed region).
_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


async def fetch_async(url: str) -> int:
    """One GET on a shared aiohttp session (pooled keep-alive connections); returns the status."""
    import aiohttp

    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None:
        session = _sessions[loop] = aiohttp.ClientSession()
    async with session.get(url) as response:
        await response.read()
        return response.status


async def close_sessions() -> None:
    """Close the session `fetch_async` opened on the running loop, if any."""
    session = _sessions.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()

