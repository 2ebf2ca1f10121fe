"""Functions the shipped playbooks call. Each kind of work the talk describes has one here."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from typing import Any

from orchestrator.logs import get_logger

# The library's logger: lines carry the run's context (run_id, step, index, executor), from threads
# and worker processes too, and follow the library's rules when a script configures no logging.
log = get_logger("playbooks.tasks")


async def fetch_inventory(host: str) -> dict[str, Any]:
    """Non-blocking I/O: a coroutine that waits without holding a thread (a stand-in for an API call)."""
    await asyncio.sleep(0.05)
    return {"host": host, "os": "linux", "checked_by": "coroutine"}


def query_sdk(host: str) -> dict[str, Any]:
    """Blocking I/O: a synchronous SDK call that holds its thread while it waits."""
    time.sleep(0.05)
    log.info("sdk.queried", host=host)
    return {"host": host, "pid": os.getpid()}


def fingerprint(host: str, rounds: int = 20_000) -> dict[str, Any]:
    """CPU work: pure-Python hashing that holds the GIL, so only processes run it in parallel."""
    digest = host.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    log.info("fingerprint.computed", host=host)
    return {"host": host, "fingerprint": digest.hex()[:16], "pid": os.getpid()}


def render_config(vm: dict[str, Any], network: dict[str, Any] | None = None) -> str:
    """CPU work: render one VM's configuration file."""
    lines = [f"# {vm.get('name', vm.get('id'))}", f"id = {vm.get('id')}", f"ip = {vm.get('ip', '')}"]
    if network:
        lines.append(f"network = {network.get('id')} {network.get('cidr', '')}")
    body = "\n".join(lines) + "\n"
    checksum = hashlib.sha256(body.encode()).hexdigest()
    return body + f"checksum = {checksum}\n"
