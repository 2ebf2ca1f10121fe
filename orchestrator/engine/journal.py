"""Durable runs, as the engine sees them: what it tells a journal as it goes, and what a resumed run
takes from the record.

A `Journal` is a reporter that also records the items of `for_each` steps as they finish (the
history's `RunJournal` is one). A `ResumePoint` is what a resumed run starts from: the main steps
that succeeded (not run again; their outputs feed later templates) and, per `for_each` step, the
items that succeeded (only the others run). Both are read from the record by the interface layer;
the engine only consults them.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from orchestrator.planner import PlannedStep

@runtime_checkable
class Journal(Protocol):
    """A reporter that records items as they finish, so a resumed run can skip them."""

    def journal_items(self, step: PlannedStep, records_output: bool) -> list[Any] | None:
        """The list the engine appends each item of `step` that succeeds to (in this run attempt):
        its index, or ``(index, output)`` when `records_output`. The journal takes them from it
        when it writes (and empties it); None when it records nothing."""
        ...


class IndexRanges:
    """A set of item indices held as sorted, disjoint half-open ranges: the items a fan-out
    finished are nearly contiguous, so a million of them take a few ranges, not a million ints."""

    __slots__ = ("_starts", "_stops", "count")

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        merged: list[list[int]] = []
        for start, stop in sorted(ranges):
            if stop <= start:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], stop)
            else:
                merged.append([start, stop])
        self._starts = [a for a, _ in merged]
        self._stops = [b for _, b in merged]
        self.count = sum(b - a for a, b in merged)

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int):
            return False
        at = bisect.bisect_right(self._starts, index) - 1
        return at >= 0 and index < self._stops[at]

    def __len__(self) -> int:
        return self.count

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._stops, strict=True))


def as_ranges(indices: list[int]) -> list[tuple[int, int]]:
    """Distinct indices as sorted half-open ranges (consumes the list's order: it is sorted in place)."""
    if not indices:
        return []
    low, high = min(indices), max(indices)
    if high - low + 1 == len(indices):  # the usual case, items finished as a block: no sort needed
        return [(low, high + 1)]
    indices.sort()
    out: list[tuple[int, int]] = []
    start = prev = indices[0]
    for i in indices[1:]:
        if i != prev + 1:
            out.append((start, prev + 1))
            start = i
        prev = i
    out.append((start, prev + 1))
    return out


@dataclass(frozen=True)
class RecordedStep:
    """A main step that succeeded in an earlier attempt of the run."""

    attempts: int
    retries: int
    duration_s: float
    items: int | None
    output: Any


@dataclass(frozen=True)
class RecordedItems:
    """The items of a `for_each` step that succeeded in earlier attempts, and the outputs recorded
    for them (only for a step whose output a template reads)."""

    done: IndexRanges
    outputs: Mapping[int, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run starts. `generation` counts the times the run's work was undone by
    `rollback` and started again: it is part of every Idempotency-Key, so work done again after a
    rollback is not mistaken by a server for the work that was undone."""

    generation: int = 0
    steps: Mapping[str, RecordedStep] = field(default_factory=dict)
    items: Mapping[str, RecordedItems] = field(default_factory=dict)
