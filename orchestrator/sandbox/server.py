"""Starting and stopping the sandbox: in this event loop, or as a child process."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from aiohttp import web

from orchestrator.sandbox.app import STATE_KEY, SandboxSettings, create_app

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
        "--operation-delay",
        repr(settings.operation_delay),
    ]
    if settings.rate_limit is not None:
        argv += ["--rate-limit", repr(settings.rate_limit)]
    if settings.seed is not None:
        argv += ["--seed", str(settings.seed)]
    for pattern in settings.never_ready:
        argv.append(f"--never-ready={pattern}")  # "=" keeps patterns like "-x" from parsing as flags
    return argv


def _pump_stdout(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    # Keep reading after the first line so the child can never block on a full pipe.
    for line in stream:
        lines.put(line)
    lines.put(None)


class SandboxProcess:
    """The sandbox in a child process (`python -m orchestrator.sandbox`); a sync context manager."""

    def __init__(
        self, settings: SandboxSettings | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.settings = settings if settings is not None else SandboxSettings()
        self.host = host
        self.port = port
        self.url: str | None = None
        self.process: subprocess.Popen[str] | None = None
        self._stderr: IO[bytes] | None = None
        self._pump: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the child, while it runs."""
        return self.process.pid if self.process is not None else None

    def start(self) -> str:
        """Start the child, wait until it listens and return its URL."""
        if self.process is not None:
            raise RuntimeError("sandbox process already started")
        argv = [
            sys.executable,
            "-m",
            "orchestrator.sandbox",
            "--host",
            self.host,
            "--port",
            str(self.port),
            *settings_to_argv(self.settings),
        ]
        env = dict(os.environ)
        # Make the package importable even when it is not installed (running from a checkout).
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        # A file, not a pipe, so it can never fill up; closed in stop().
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)
        assert self.process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        self._pump = threading.Thread(target=_pump_stdout, args=(self.process.stdout, lines), daemon=True)
        self._pump.start()
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            line = None
        if line is None or not line.startswith(URL_PREFIX):
            stderr = self._read_stderr()
            self.stop()
            raise RuntimeError(
                f"sandbox process did not report its URL (first line {line!r}); stderr:\n{stderr}"
            )
        self.url = line[len(URL_PREFIX) :].strip()
        return self.url

    def _read_stderr(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after a grace period) and reap it."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_GRACE)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if self._pump is not None:  # it sees EOF now that the child is gone
                self._pump.join(timeout=STOP_GRACE)
                self._pump = None
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self.url = None

    def __enter__(self) -> SandboxProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
