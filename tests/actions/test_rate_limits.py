"""Named limits seen from the server: `http` steps that name a limit keep to its rate and concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from orchestrator.sandbox import start_sandbox
from tests.actions import run, serve

Write = Callable[..., Path]


def busiest_second(times: list[float]) -> int:
    """The most arrivals in any one-second window."""
    times = sorted(times)
    return max(sum(1 for u in times[i:] if u - t < 1.0) for i, t in enumerate(times))


async def test_rate_limit_holds_at_the_server(write_playbook: Write) -> None:
    """60 GETs at concurrency 20 under `rate: 20/s`: the sandbox never sees more than 21 in one second."""
    async with start_sandbox() as sandbox:
        path = write_playbook(
            "name: rate\n"
            "vars: {api: 'http://127.0.0.1:1'}\n"
            "limits:\n  api: {rate: 20/s}\n"
            "steps:\n"
            '  - id: get\n    for_each: "{{ range(60) }}"\n    concurrency: 20\n    limit: api\n'
            '    http: {url: "{{ api }}/v1/networks", params: {n: "{{ item }}"}}\n'
        )
        result = await run(path, vars={"api": sandbox.url})
        async with aiohttp.ClientSession() as session, session.get(f"{sandbox.url}/v1/_requests") as response:
            requests = (await response.json())["items"]
    assert result.status == "succeeded"
    times = [r["t"] for r in requests if r["path"] == "/v1/networks"]
    assert len(times) == 60
    assert busiest_second(times) <= 21
    assert max(times) - min(times) >= 2.0  # 60 starts 50 ms apart span 2.95 s


async def test_concurrency_limit_holds_at_the_server(write_playbook: Write) -> None:
    """Under `concurrency: 3` the server never has more than 3 requests in flight (and does reach 3)."""
    in_flight = 0
    peak = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.02)
        finally:
            in_flight -= 1
        return web.json_response({})

    async with serve() as server:
        server.script("/slow", slow)
        path = write_playbook(
            "name: concurrency\n"
            "vars: {api: 'http://127.0.0.1:1'}\n"
            "limits:\n  api: {concurrency: 3}\n"
            "steps:\n"
            '  - id: get\n    for_each: "{{ range(30) }}"\n    concurrency: 10\n    limit: api\n'
            '    http: {url: "{{ api }}/slow"}\n'
        )
        result = await run(path, vars={"api": server.url})
    assert result.status == "succeeded" and len(server.seen) == 30
    assert peak == 3
