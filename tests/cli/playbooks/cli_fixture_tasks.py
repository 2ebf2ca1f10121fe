"""Functions the CLI test playbooks call."""

from __future__ import annotations

import asyncio
from pathlib import Path


async def tick(n: int, seconds: float = 0.05) -> int:
    """One item of a `for_each`: wait a little, return the item."""
    await asyncio.sleep(seconds)
    return n


def fail_once(flag: str) -> str:
    """Fail the first time (leaving `flag` behind), succeed on the retry."""
    path = Path(flag)
    if not path.exists():
        path.write_text("failed once\n")
        raise RuntimeError("transient failure on the first attempt")
    return "recovered"


def warn_from_worker(n: int) -> int:
    """A cpu item that logs a warning from its worker process while the live view redraws."""
    import time

    from orchestrator.logs import get_logger

    time.sleep(0.1)
    get_logger("fixture").warning(f"worker-says-{n}")
    return n
