"""While runs are in progress the youngest generation is collected less often; afterwards the
interpreter's own setting is back, unless someone else changed it meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from typing import TYPE_CHECKING

import pytest

import orchestrator
from orchestrator.config import loads_config
from orchestrator.engine.collector import fewer_young_collections

if TYPE_CHECKING:
    from collections.abc import Iterator

H = "tests.engine.steps_helpers"
DEFAULT = 700


@pytest.fixture(autouse=True)
def interpreter_threshold() -> Iterator[None]:
    found = gc.get_threshold()
    gc.set_threshold(DEFAULT, found[1], found[2])
    yield
    gc.set_threshold(*found)


def playbook(seconds: float = 0.0) -> str:
    return f"""
name: gc
steps:
  - id: seen
    call: {H}:gc_threshold
    with: {{seconds: {seconds}}}
"""


def test_a_run_raises_the_young_threshold_and_puts_it_back() -> None:
    result = orchestrator.run(orchestrator.loads(playbook()))
    assert result.step("seen").output[0] == 10_000
    assert gc.get_threshold()[0] == DEFAULT


def test_the_threshold_comes_from_configuration_and_null_leaves_it_alone() -> None:
    for text, expected in (("gc: {young_threshold: 50000}", 50_000), ("gc: {young_threshold: null}", DEFAULT)):
        plan = orchestrator.plan(orchestrator.loads(playbook()), config=loads_config(text))
        assert orchestrator.run(plan).step("seen").output[0] == expected
        assert gc.get_threshold()[0] == DEFAULT


def test_a_threshold_already_higher_is_kept() -> None:
    gc.set_threshold(100_000)
    assert orchestrator.run(orchestrator.loads(playbook())).step("seen").output[0] == 100_000
    assert gc.get_threshold()[0] == 100_000


async def test_concurrent_runs_put_it_back_when_the_last_one_ends() -> None:
    long = asyncio.ensure_future(orchestrator.arun(orchestrator.loads(playbook(600.0))))
    short = await orchestrator.arun(orchestrator.loads(playbook(0.0)))
    assert short.step("seen").output[0] == 10_000
    assert not long.done() and gc.get_threshold()[0] == 10_000  # the long run is still going
    long.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await long
    assert gc.get_threshold()[0] == DEFAULT


def test_a_change_made_during_the_run_is_not_undone() -> None:
    with fewer_young_collections(10_000):
        assert gc.get_threshold()[0] == 10_000
        gc.set_threshold(5_000)
    assert gc.get_threshold()[0] == 5_000


def test_collection_switched_off_by_a_zero_threshold_stays_off() -> None:
    gc.set_threshold(0)
    with fewer_young_collections(10_000):
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold()[0] == 0


def test_a_bad_threshold_is_a_configuration_error() -> None:
    with pytest.raises(orchestrator.ConfigError) as info:
        loads_config("gc: {young_threshold: 0}", file="cfg.yml")
    assert "cfg.yml:1:" in str(info.value)
