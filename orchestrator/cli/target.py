"""The embedded default target: a sandbox API the CLI starts when a playbook points at it and
nothing answers there, so `orchestrate playbooks/deploy.yml` needs no set-up."""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from orchestrator.config import Config


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def embedded_target(vars: Mapping[str, Any], given: set[str], config: Config) -> Iterator[dict[str, Any]]:
    """Start the sandbox if the playbook's `api` is the sandbox address, was not set with --var,
    and no server answers there. Yields settings for the run (empty when nothing was started)."""
    url = vars.get("api")
    settings = config.sandbox
    if not settings.enabled or "api" in given or not isinstance(url, str) or url.rstrip("/") != settings.url.rstrip("/"):
        yield {}
        return
    parts = urlsplit(settings.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if _answers(host, port):
        yield {}
        return
    from orchestrator.sandbox import SandboxProcess
    from orchestrator.sandbox import SandboxSettings as Settings

    sandbox = SandboxProcess(
        Settings(latency=settings.latency, fault_rate=settings.fault_rate, rate_limit=settings.rate_limit), host=host, port=port
    )
    sandbox.start()
    print(f"orchestrate: started the embedded sandbox API at {sandbox.url}", file=sys.stderr)
    try:
        yield {"sandbox_url": sandbox.url}
    finally:
        sandbox.stop()
