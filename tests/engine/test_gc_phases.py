"""A program pauses the collector for phases that keep what they allocate and turns it on for a
run; each block leaves the collector as it found it."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import pytest

from orchestrator.engine.collector import collecting, paused

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_paused_then_collecting_inside_then_back() -> None:
    """Off in `paused`, on in a `collecting` inside it, off again after it, on after `paused`."""
    gc.enable()
    with paused():
        assert not gc.isenabled()
        with collecting():
            assert gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    """`paused` does not turn on a collector someone else turned off."""
    gc.disable()
    with paused():
        pass
    assert not gc.isenabled()


def test_what_a_paused_phase_kept_is_not_left_to_the_next_young_collection() -> None:
    """After `paused` (and at the start of `collecting`), what the block made and kept is in the
    oldest generation, not the youngest, and nothing is left frozen."""
    gc.collect()
    with paused():
        kept = [[i] for i in range(50_000)]  # 50,000 tracked lists
        # Not exactly 50,000: a tracked object freed meanwhile (by a thread an earlier test left
        # winding down, say) takes one off the count.
        assert gc.get_count()[0] >= 40_000
    assert gc.get_count()[0] < 1_000
    assert gc.get_freeze_count() == 0
    with paused():
        more = [[i] for i in range(50_000)]
        with collecting():
            assert gc.get_count()[0] < 1_000
    assert gc.get_freeze_count() == 0
    assert len(kept) == len(more)


def test_objects_someone_else_froze_stay_frozen() -> None:
    """A program that froze objects itself (before forking workers, say) keeps them frozen."""
    gc.freeze()
    frozen = gc.get_freeze_count()
    with paused(), collecting():
        pass
    # Not all still frozen, necessarily: a frozen object whose last reference goes is freed.
    assert gc.get_freeze_count() > frozen // 2
