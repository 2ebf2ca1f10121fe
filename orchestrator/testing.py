"""Test helpers for playbook authors, registered as a pytest plugin (``orchestrator``).

Fixtures:
- ``sandbox``: a running sandbox infrastructure API on 127.0.0.1 (fresh per test);
- ``run_playbook``: run a playbook file with vars and get its RunResult.

``sandbox`` is an async fixture declared with pytest-asyncio's own decorator, so it works in its
default ``strict`` mode (where a plain ``@pytest.fixture`` on an async generator is not run on the
loop but handed to the test as a generator) as well as in ``auto`` mode. In strict mode the tests
that use it are marked ``@pytest.mark.asyncio``, as every async test there must be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    import os
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from orchestrator.engine.results import RunResult
    from orchestrator.sandbox import RunningSandbox

_F = TypeVar("_F")


def _async_fixture_decorator() -> Callable[[_F], _F]:
    try:
        from pytest_asyncio import fixture
    except ImportError:  # without pytest-asyncio no async test runs anyway; the fixture stays declared
        return cast("Callable[[_F], _F]", pytest.fixture)
    return cast("Callable[[_F], _F]", fixture)


@_async_fixture_decorator()
async def sandbox() -> AsyncIterator[RunningSandbox]:
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
