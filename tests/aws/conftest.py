"""Fixtures for `aws` steps: a moto server on 127.0.0.1, a scriptable fake AWS endpoint, and a runner."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

import orchestrator
from orchestrator.config import Config, TargetSettings
from orchestrator.emulator import CREDENTIALS

if TYPE_CHECKING:
    from pathlib import Path

REGION = "us-east-1"


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh, empty bucket (names are unique: the emulator lives for the whole session)."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@dataclass
class Sleeps:
    """An injected `sleep` that records the waits instead of waiting."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


RunAws = Callable[..., Awaitable[orchestrator.RunResult]]


@pytest.fixture
def run_aws(tmp_path: Path, moto_url: str) -> Callable[..., Awaitable[orchestrator.RunResult]]:
    """``await run_aws(yaml, vars=..., endpoint=..., settings=...)``: load, plan and run a playbook whose
    `aws` steps talk to the emulator (or to `endpoint`); pass `sleeps=Sleeps()` to see the retry waits."""

    async def run(text: str, *, vars: dict[str, Any] | None = None, endpoint: str | None = None,
                  settings: TargetSettings | None = None, sleeps: Sleeps | None = None) -> orchestrator.RunResult:
        playbook = orchestrator.loads(textwrap.dedent(text), file=str(tmp_path / "p.yml"))
        config = Config(aws={"endpoint_url": endpoint or moto_url, "region": REGION})
        plan = orchestrator.plan(playbook, vars=vars, config=config)
        run_settings = TargetSettings(aws_credentials=dict(CREDENTIALS)) if settings is None else settings
        return await orchestrator.arun(plan, settings=run_settings, sleep=sleeps or Sleeps())

    return run


@dataclass
class FakeAws:
    """A local HTTP server speaking just enough AWS: each request takes the next scripted answer,
    then `final` forever. `seen` records "METHOD /path" of every request."""

    url: str = ""
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    final: tuple[int, dict[str, str], str] = (200, {}, "")
    seen: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.seen.append(f"{request.method} {request.path}")
        status, headers, body = self.script.pop(0) if self.script else self.final
        return web.Response(status=status, headers=headers, body=body.encode())


@pytest.fixture
async def fake_aws() -> AsyncIterator[FakeAws]:
    """A FakeAws on a free loopback port, served from the test's event loop."""
    fake = FakeAws()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.url = f"http://{host}:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()
