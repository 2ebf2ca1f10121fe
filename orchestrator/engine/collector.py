"""While runs are in progress, CPython collects its youngest generation less often.

CPython collects generation 0 whenever 700 more container objects have been allocated than freed
since the last collection. A fan-out keeps every item's output (`steps.<id>.output`), a few such
objects per item, so with the default it collects every hundred or so items. Each collection walks
every object of every request still in flight (about fifty per aiohttp request), finds them all
alive, and moves them on; the outputs themselves are walked once whatever the threshold. A higher
threshold makes the walks of in-flight work rare: at zero latency the `http` action spends 3 to 6 µs
less CPU per request, a twentieth to a tenth of it (bench/http_client.py). Memory is not at stake:
the young generation stays bounded by the threshold, whatever the number of items.

The threshold is the interpreter's, not the run's: it is raised when the first run starts and put
back when the last one ends, unless something else changed it meanwhile. A threshold of 0
(automatic collection off) is left alone, as is everything when `young_threshold` is null.

A program's other phases allocate much and free little: importing modules, loading and planning a
playbook, printing a result. Collections there find next to nothing to free, and each full one
walks every object made so far, so their cost grows faster than the work: 20% of a 5,000-step dry
run and 38% of a 20,000-step one, and 10% of the CLI's start-up (measured here, bench/cli.py).
`paused` switches automatic collection off for such a phase and `collecting` back on inside it,
for the run; the CLI runs whole in `paused`, its run in `collecting`, and freezes what is alive
when it ends (`before_exit`).
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

_lock = threading.Lock()  # runs may start and end in several threads, each with its own loop
_runs = 0
_saved: tuple[int, int, int] | None = None  # the threshold found when the first run started
_ours: tuple[int, int, int] | None = None  # the one set, so a change made meanwhile is not undone


@contextmanager
def fewer_young_collections(threshold: int | None) -> Iterator[None]:
    """Generation 0 collected after at least `threshold` net allocations while the block runs."""
    global _runs, _saved, _ours
    with _lock:
        _runs += 1
        if _runs == 1:
            found = gc.get_threshold()
            if threshold and 0 < found[0] < threshold:
                _saved, _ours = found, (threshold, found[1], found[2])
                gc.set_threshold(*_ours)
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                if _saved is not None and gc.get_threshold() == _ours:
                    gc.set_threshold(*_saved)
                _saved = _ours = None


@contextmanager
def paused() -> Iterator[None]:
    """No automatic collection while the block runs (then as it was before). For phases that keep
    what they allocate, such as importing, loading, planning and printing a result. What the block
    made and kept is then moved to the oldest generation (`_promote`)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        _promote()
        if was:
            gc.enable()


@contextmanager
def collecting() -> Iterator[None]:
    """Automatic collection on while the block runs (then as it was before): a run inside `paused`,
    whose finished items and responses are garbage to collect. What is alive when it starts (the
    modules, the plan) is moved to the oldest generation first (`_promote`)."""
    was = gc.isenabled()
    _promote()
    gc.enable()
    try:
        yield
    finally:
        if not was:
            gc.disable()


def before_exit() -> None:
    """For a program about to exit: freeze what is alive, so the interpreter's final collection does
    not walk it. That collection frees nothing the end of the process would not, and after a
    20,000-step dry run it takes 1.3 to 1.7 s here (with this, 0.1 to 0.2 s)."""
    gc.freeze()


def _promote() -> None:
    """Move every object the collector tracks to its oldest generation, without walking them.

    After a paused phase, the youngest generation holds everything the phase made: the next young
    collection would walk it all to find it alive (15 to 25 ms of a one-step run, 8% to 11% of a
    dry run here). Freezing and at once unfreezing moves the objects where a full collection, and
    only that, will look at them. Left alone when objects are frozen already: someone froze them
    on purpose, and unfreezing would undo it."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
