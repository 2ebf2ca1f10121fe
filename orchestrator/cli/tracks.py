"""A recorded timeline laid out in tracks, for the Chrome trace and the HTML page alike.

One track per place work ran: the event loop, each pool thread, each worker process, each Dask
worker; and one per step, with the step's span and its waits and retried attempts. Spans that
overlap on one place (items interleaved on the event loop, concurrent retries of one step) are
packed into as few numbered rows of that place as keep each row free of overlaps, so every row
reads as a sequence, as trace viewers require.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.history.timeline import RunTimeline, Span

CONTROLLER = "controller"


@dataclass(frozen=True)
class Track:
    """A row: the process it belongs to (`process`: a pid, or a stand-in for a Dask worker), its
    thread id within it, and the names to show."""

    process: int
    process_name: str
    thread: int
    name: str
    place: str  # "step", "loop", "thread", "process", "dask"


@dataclass(frozen=True)
class Placed:
    span: Span
    track: int  # index into `Layout.tracks`


@dataclass(frozen=True)
class Layout:
    tracks: tuple[Track, ...]
    placed: tuple[Placed, ...]
    steps: tuple[str, ...]  # step ids in the order they started


def layout(timeline: RunTimeline) -> Layout:
    steps = [s.step for s in timeline.spans if s.what == "step" and s.step is not None]
    by_key: dict[tuple[str, str], list[Span]] = {}
    for span in timeline.spans:
        by_key.setdefault(_place(span), []).append(span)
    keys = sorted(by_key, key=lambda k: _order(k, steps))
    tracks: list[Track] = []
    placed: list[Placed] = []
    dask_pids: dict[str, int] = {}
    for key in keys:
        rows = _pack(by_key[key])
        first = len(tracks)
        for row in range(max(rows.values(), default=0) + 1):
            tracks.append(_track(key, row, timeline.pid, dask_pids, len(tracks)))
        placed.extend(Placed(span, first + row) for span, row in ((s, rows[id(s)]) for s in by_key[key]))
    return Layout(tuple(tracks), tuple(placed), tuple(steps))


def _place(span: Span) -> tuple[str, str]:
    if span.what in ("step", "wait", "attempt"):
        return ("step", span.step or "")
    if span.what == "stall":
        return ("loop", "stalls")
    lane = span.lane or "loop"
    kind, _, where = lane.partition(":")
    if kind == "loop":
        return ("loop", "")
    return (kind, where or kind)


def _order(key: tuple[str, str], steps: list[str]) -> tuple[int, int, str]:
    place, where = key
    rank = {"step": 0, "loop": 1, "thread": 2, "process": 3, "dask": 4}.get(place, 5)
    if place == "step":
        return (rank, steps.index(where) if where in steps else len(steps), where)
    if place == "thread":
        digits = where.rpartition("_")[2]
        return (rank, int(digits) if digits.isdigit() else 0, where)
    if place == "loop":
        return (rank, 1 if where == "stalls" else 0, where)
    return (rank, int(where) if where.isdigit() else 0, where)


def _pack(spans: list[Span]) -> dict[int, int]:
    """Row of each span (by id) such that no two spans of a row overlap; a step's own span first."""
    ordered = sorted(spans, key=lambda s: (s.what != "step", s.start, -s.end))
    rows: dict[int, int] = {}
    free: list[tuple[float, int]] = []  # (end of the row's last span, row)
    count = 0
    for span in ordered:
        if span.what == "step":  # the step's span is row 0, its waits go beneath it
            rows[id(span)] = 0
            count = max(count, 1)
            continue
        if free and free[0][0] <= span.start:
            _, row = heapq.heappop(free)
        else:
            row = count
            count += 1
            if row == 0 and any(s.what == "step" for s in spans):  # row 0 holds the step
                row = count
                count += 1
        rows[id(span)] = row
        heapq.heappush(free, (span.end, row))
    return rows


def _track(key: tuple[str, str], row: int, pid: int, dask_pids: dict[str, int], index: int) -> Track:
    place, where = key
    suffix = f" ({row + 1})" if row else ""
    if place == "step":
        return Track(pid, CONTROLLER, 1 + index, f"step {where}" if not row else f"step {where}: waits{suffix}", "step")
    if place == "loop":
        name = "event loop: stalls" if where == "stalls" else f"event loop{suffix}"
        return Track(pid, CONTROLLER, 100_000 + (99_999 if where == "stalls" else row), name, "loop")
    if place == "thread":
        digits = where.rpartition("_")[2]
        number = int(digits) if digits.isdigit() else 0
        return Track(pid, CONTROLLER, 200_000 + number * 100 + row, f"thread {where}{suffix}", "thread")
    if place == "process" and where.isdigit():
        return Track(int(where), f"worker process {where}", 1 + row, f"worker process {where}{suffix}", "process")
    if place == "dask":
        stand_in = dask_pids.setdefault(where, 1_000_000 + len(dask_pids))
        return Track(stand_in, f"dask worker {where}", 1 + row, f"dask worker {where}{suffix}", "dask")
    return Track(pid + 500_000, f"{where} (worker not known)", 1 + row, f"{where}{suffix}", place)
