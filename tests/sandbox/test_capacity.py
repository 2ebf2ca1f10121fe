"""The sandbox's capacity: N served at once, N more queued, 429 with a Retry-After beyond; changed live."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from orchestrator.sandbox import SandboxSettings, start_sandbox
from orchestrator.sandbox.__main__ import build_parser
from orchestrator.sandbox.server import settings_to_argv
from orchestrator.sandbox.state import STATE_KEY


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str | None]:
    async with session.get(f"{url}/v1/networks") as response:
        await response.read()
        return response.status, response.headers.get("Retry-After")


async def test_above_capacity_requests_queue_and_past_twice_it_they_get_429() -> None:
    """Capacity 2, six requests at once: two are served, two queue behind them, two are refused at
    once with a Retry-After; the request log says how many were in the sandbox as each arrived."""
    async with start_sandbox(SandboxSettings(latency=0.2, capacity=2)) as sandbox, aiohttp.ClientSession() as session:
        answers = await asyncio.gather(*(get(session, sandbox.url) for _ in range(6)))
        async with session.get(f"{sandbox.url}/v1/_requests") as response:
            log = (await response.json())["items"]
        stats = await sandbox.stats()
    assert sorted(status for status, _ in answers) == [200, 200, 200, 200, 429, 429]
    assert all(float(wait) > 0 for status, wait in answers if status == 429)  # type: ignore[arg-type]
    assert sorted(r["in_flight"] for r in log) == [1, 2, 3, 4, 5, 5]
    assert stats["peak_in_flight"] == 4 and stats["in_flight"] == 0


async def test_the_queued_requests_are_served_in_arrival_order_after_the_first() -> None:
    """With capacity 1, the second request waits for the first: it ends after it, in order."""
    async with start_sandbox(SandboxSettings(latency=0.05, capacity=1)) as sandbox, aiohttp.ClientSession() as session:
        first = asyncio.ensure_future(get(session, sandbox.url))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(get(session, sandbox.url))
        done, _ = await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {first}
        assert (await second)[0] == 200


async def test_raising_the_capacity_at_run_time_serves_the_queue_at_once() -> None:
    """Four requests at capacity 2 with a long latency: two served, two queued. PATCH the capacity
    to 4 and the queued ones are admitted at once (all four in service together), none refused."""
    async with start_sandbox(SandboxSettings(latency=0.5, capacity=2)) as sandbox, aiohttp.ClientSession() as session:
        admission = sandbox.app[STATE_KEY].admission
        calls = [asyncio.ensure_future(get(session, sandbox.url)) for _ in range(4)]
        for _ in range(200):
            if admission.in_flight == 4:
                break
            await asyncio.sleep(0.005)
        assert (admission.serving, len(admission.queue)) == (2, 2)
        async with session.patch(f"{sandbox.url}/v1/_settings", json={"capacity": 4}) as response:
            assert (await response.json())["capacity"] == 4
        assert (admission.serving, len(admission.queue)) == (4, 0)
        assert [status for status, _ in await asyncio.gather(*calls)] == [200, 200, 200, 200]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4"])
async def test_a_capacity_must_be_a_positive_integer(bad: Any) -> None:
    with pytest.raises(ValueError, match="capacity must be a positive integer"):
        SandboxSettings(capacity=bad)


def test_the_command_line_takes_the_capacity_and_the_child_process_gets_it() -> None:
    assert build_parser().parse_args(["--capacity", "40"]).capacity == 40
    argv = settings_to_argv(SandboxSettings(capacity=40))
    assert argv[argv.index("--capacity") + 1] == "40"
    assert "--capacity" not in settings_to_argv(SandboxSettings())
