"""Fixtures of the action tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.actions import Server, serve


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """A scripted aiohttp server on 127.0.0.1 for one test."""
    async with serve() as running:
        yield running
