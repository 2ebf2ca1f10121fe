"""Test helpers for playbook authors, registered as a pytest plugin (``orchestrator``).

Fixtures:
- ``sandbox``: a running sandbox infrastructure API on 127.0.0.1 (fresh per test);
- ``run_playbook``: run a playbook file with vars and get its RunResult.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import os
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from orchestrator.engine.results import RunResult


@pytest.fixture
async def sandbox() -> AsyncIterator[Any]:
    """A sandbox API on a free loopback port, with its settings adjustable during the test."""
    from orchestrator.sandbox import start_sandbox

    async with start_sandbox() as running:
        yield running


@pytest.fixture
def run_playbook() -> Callable[..., Awaitable[RunResult]]:
    """``await run_playbook(path, vars={...})``: plan and run a playbook on the test's event loop."""
    from orchestrator.api import arun

    async def runner(path: str | os.PathLike[str], vars: Mapping[str, Any] | None = None, **options: Any) -> RunResult:
        return await arun(path, vars=vars, **options)

    return runner
