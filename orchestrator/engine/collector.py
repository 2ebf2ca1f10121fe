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
