"""Fixtures of the action tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.actions import Server, serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """A scripted aiohttp server on 127.0.0.1 for one test."""
    async with serve() as running:
        yield running
