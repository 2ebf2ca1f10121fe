"""Starting and stopping the sandbox: in this event loop, or as a child process."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from orchestrator._child_server import ChildServer
from orchestrator.sandbox.app import create_app
from orchestrator.sandbox.state import STATE_KEY, SandboxSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

URL_PREFIX = "SANDBOX_URL="
START_TIMEOUT = 15.0
STOP_GRACE = 5.0


@dataclass
class RunningSandbox:
    """A sandbox served by this process; `settings` is live (changing it changes the server)."""

    url: str
    settings: SandboxSettings
    app: web.Application

    async def stats(self) -> dict[str, Any]:
        """Return the same document as GET /v1/_stats, read straight from the state."""
        return self.app[STATE_KEY].stats()


@contextlib.asynccontextmanager
async def start_sandbox(
    settings: SandboxSettings | None = None, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningSandbox]:
    """Serve the sandbox on host:port (0 = a free port) for the duration of the block."""
    settings = settings if settings is not None else SandboxSettings()
    app = create_app(settings)
    # No access log: thousands of requests per test run. Short shutdown: in-flight calls only sleep.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound: tuple[Any, ...] = runner.addresses[0]  # the real port when port=0
        url_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        yield RunningSandbox(url=f"http://{url_host}:{bound[1]}", settings=settings, app=app)
    finally:
        await runner.cleanup()


def settings_to_argv(settings: SandboxSettings) -> list[str]:
    """Command-line flags of `python -m orchestrator.sandbox` that reproduce `settings`."""
    argv = [
        "--latency",
        repr(settings.latency),
        "--fault-rate",
        repr(settings.fault_rate),
        "--lost-rate",
        repr(settings.lost_rate),
        "--operation-delay",
        repr(settings.operation_delay),
    ]
    if settings.rate_limit is not None:
        argv += ["--rate-limit", repr(settings.rate_limit)]
    if settings.capacity is not None:
        argv += ["--capacity", str(settings.capacity)]
    if settings.seed is not None:
        argv += ["--seed", str(settings.seed)]
    for pattern in settings.never_ready:
        argv.append(f"--never-ready={pattern}")  # "=" keeps patterns like "-x" from parsing as flags
    return argv


class SandboxProcess(ChildServer):
    """The sandbox in a child process (`python -m orchestrator.sandbox`); a sync context manager."""

    url_prefix = URL_PREFIX
    what = "sandbox process"
    start_timeout = START_TIMEOUT
    stop_grace = STOP_GRACE

    def __init__(
        self, settings: SandboxSettings | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__()
        self.settings = settings if settings is not None else SandboxSettings()
        self.host = host
        self.port = port

    def start(self) -> str:
        """Start the child, wait until it listens and return its URL."""
        argv = [
            sys.executable, "-m", "orchestrator.sandbox", "--host", self.host, "--port", str(self.port),
            *settings_to_argv(self.settings),
        ]
        env = dict(os.environ)
        # Make the package importable even when it is not installed (running from a checkout).
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        return self._launch(argv, env=env)
