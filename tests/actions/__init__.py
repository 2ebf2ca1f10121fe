"""Shared by the action tests: a real aiohttp server on 127.0.0.1 that answers from a script and
records every request it sees (method, path, query, headers, body, arrival time)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import CIMultiDict

import orchestrator

if TYPE_CHECKING:
    from pathlib import Path

Answer = tuple[int, Any, dict[str, str]] | Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: CIMultiDict[str]  # names case-insensitive, as in HTTP
    body: bytes
    at: float
    peer: Any


@dataclass
class Server:
    """Answers each path from its script (the last answer repeats); unknown paths get 404."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    scripts: dict[str, list[Answer]] = field(default_factory=dict)

    def script(self, path: str, *answers: Answer) -> None:
        """Answer requests to `path` with these, in order; an answer is (status, json body or text, headers)
        or an aiohttp handler."""
        self.scripts[path] = list(answers)

    def to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query.setdefault(key, []).append(value)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(Seen(request.method, request.path, query, CIMultiDict(request.headers), body, time.monotonic(), peer))
        answers = self.scripts.get(request.path)
        if not answers:
            return web.json_response({"error": "not found"}, status=404)
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if callable(answer):
            return await answer(request)
        status, payload, headers = answer
        if isinstance(payload, str | bytes):
            return web.Response(status=status, body=payload if isinstance(payload, bytes) else payload.encode(), headers=headers)
        return web.json_response(payload, status=status, headers=headers)


@contextlib.asynccontextmanager
async def serve() -> AsyncIterator[Server]:
    """A scripted, recording server on a free loopback port for the duration of the block."""
    server = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield server
    finally:
        await runner.cleanup()


async def run(
    path: Path, *, vars: dict[str, Any] | None = None, config: orchestrator.Config | None = None, **options: Any
) -> orchestrator.RunResult:
    """Plan the playbook file at `path` and run it on this event loop."""
    return await orchestrator.arun(orchestrator.plan(path, vars=vars, config=config), **options)


class Clock:
    """Injected time: `sleep` records each wait and moves `now` forward by it, without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def one_step(steps: str, name: str = "action test") -> str:
    """A playbook around `steps` (indented step lines), with `api` to override by --var."""
    return f"name: {name}\nvars: {{api: 'http://127.0.0.1:1'}}\nsteps:\n{steps}"
