"""Callables the invalid corpus names: ones that cannot run where their playbook puts them."""

from __future__ import annotations

ANSWER = 42

square = lambda x: x * x  # noqa: E731 - the point: a lambda cannot be pickled for a worker process


def square_def(x: int) -> int:
    """A plain function; valid on every kind."""
    return x * x


async def fetch() -> str:
    """A coroutine function: it belongs on the event loop, never in a process or a thread."""
    return "fetched"
