"""Callables the valid corpus playbooks call, one per kind of work."""

from __future__ import annotations

import hashlib
from typing import Any


async def fetch(host: str) -> dict[str, Any]:
    """Non-blocking: a coroutine function."""
    return {"host": host}


def query(hosts: list[str]) -> int:
    """Blocking: a plain function."""
    return len(hosts)


def crunch(host: str, rounds: int = 10) -> str:
    """CPU: a module-level function a worker process can import."""
    digest = host.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()[:12]
