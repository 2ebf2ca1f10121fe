"""A step's `for_each` fan-out: a fixed set of workers pulling its items from one iterator, in time
slices that give the event loop a turn, storing each item's output as it finishes. `StepRunner`
renders and checks the sequence; this module runs its items, each through `StepRunner.item`. The
worker loop is one function on purpose: it is the per-item hot path, and any call added to it is
paid once per item."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import TYPE_CHECKING, Any

import structlog

from orchestrator.engine.events import item_hook
from orchestrator.engine.timeline import HEAD, SAMPLE, traced_item
from orchestrator.errors import describe

if TYPE_CHECKING:
    from orchestrator.engine.step import StepRunner

#: A fan-out gives the event loop a turn at least this often (seconds), whatever its items do.
_SLICE = 0.02
#: ... and reads the clock about this often (seconds) to know when a slice is over,
_LOOK = 0.002
#: ... but at least every this many items.
_MAX_SPAN = 1024
#: Outputs of a sequence of up to this many items get their list at once; longer ones grow it.
_PREALLOCATED = 1 << 20
#: `sample_at` when no item is to be traced.
_NEVER = 1 << 62

_bind = structlog.contextvars.bind_contextvars


class ItemsFailed(Exception):
    """Some items of a `for_each` failed; the others' outputs are kept for rollback to use."""

    def __init__(self, failures: list[tuple[int, str]], total: int, outputs: list[Any] | None, done: int) -> None:
        index, first = min(failures)
        not_started = total - done - len(failures)
        skipped = f" ({not_started} not started)" if not_started > 0 else ""
        super().__init__(f"{len(failures)} of {total} items failed{skipped}; first: [{index}] {first}")
        self.failed = len(failures)
        self.total = total
        self.outputs = outputs


async def fan_out(runner: StepRunner, scope: Mapping[str, Any], source: Iterable[Any]) -> tuple[list[Any] | None, int, int]:
    """Run every item of `source`, the step's rendered `for_each`, with a fixed set of workers
    pulling from one iterator: memory and tasks stay bounded by `concurrency`, whatever the number
    of items. `scope` is the step's; each item's is a copy with `item` and `index` set.

    Items that never wait (`set`, `log`, a plain function on the loop) would hold the event loop
    for the whole step, so timers, signals and cancellation would wait for its end: the workers
    give the loop a turn once a time slice has passed without one (see `_SLICE`).

    Outputs are stored as items finish, in a list that grows with them: a sequence of up to
    `_PREALLOCATED` items gets its whole list at once, a longer or unsized one (a
    `range(10**12)`) grows by doubling. A step that ends early (an item failed, or it was
    cancelled) keeps an entry, None if that item did not finish, for every item of a sequence
    of up to `_PREALLOCATED` items, and for every item up to the last one taken of a longer or
    unsized one. (A step that runs every item of a `range(10**12)` would need memory for 10**12
    outputs: keep none, as the CLI does for an output no template reads, or stop it first.)"""
    step = runner.step
    total = len(source) if isinstance(source, Sized) else None
    keep = runner.keep  # else no item's output is stored, and the step's output is None
    outputs: list[Any] = [None] * min(total, _PREALLOCATED) if total is not None and keep else []
    taken = 0  # of an unsized sequence: how many items were taken from it

    def counted(items: Iterable[Any]) -> Iterator[Any]:
        nonlocal taken
        for one in items:
            taken += 1
            yield one

    pending: Iterator[tuple[int, Any]] = enumerate(source if total is not None or not keep else counted(source))
    failures: list[tuple[int, str]] = []
    keep_going = step.on_error == "continue"
    done = 0
    # A resumed run: the items recorded as succeeded are not run again; their outputs are the record's.
    recorded = runner.state.resume.items.get(step.id)
    if recorded is not None:
        pending = ((i, x) for i, x in pending if i not in recorded.done)
        done = runner.items_resumed = recorded.done.count if total is None else sum(
            min(b, total) - a for a, b in recorded.done.ranges() if a < total
        )
        if keep:
            for index, value in recorded.outputs.items():
                if total is None or index < total:
                    if index >= len(outputs):
                        outputs.extend([None] * (index + 1 - len(outputs)))
                    outputs[index] = value
    # A journal records each item that succeeds, so that a resumed run does not run it again.
    # Appended to per item, a C call: `index` alone, or `(index, output)` when the output is recorded.
    journal = runner.state.journal
    records_output = runner.state.records_output(step.id)
    journaled = journal.journal_items(step, records_output) if journal is not None else None
    record_index = journaled.append if journaled is not None and not records_output else None
    record_output = journaled.append if journaled is not None and records_output else None
    runner.state.reporter.step_started(step, total)
    # Looked up once: a reporter's hook per item adds up over a large fan-out. Reporters get the
    # counts at each look at the clock (below) and at the end; a call per item only if one wants it.
    item_finished = item_hook(runner.state.reporter)
    items_finished = runner.state.reporter.items_finished

    stop = False  # set by the first failure: no worker takes a new item after it
    # Each item's scope is a copy of this one with `item` and `index` replaced: a copy of a dict
    # that already has the keys is the cheapest way to build it.
    item_scope = {**scope, "item": None, "index": None}
    token = _bind(index=None)["index"]  # structlog's variable for `index`, set directly per item
    index_var = token.var
    index_var.reset(token)

    # Time slices, shared by the step's workers. After each item, one comparison of `index`
    # with `look_at`; the clock is read every `span` items, `span` sized from the items' recent
    # pace so that it is read about every `_LOOK` seconds. A slice ends at `slice_end`: if the
    # loop has had a turn meanwhile (`turned`, set by a callback the loop runs on its next
    # turn; items that wait give it turns all the time), a new slice starts; if not, the worker
    # yields to the loop, and so does every other worker after its current item (`look_at = 0`).
    # Measured on a 1,000,000-item `set` fan-out: no difference beyond run-to-run noise.
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    turned = False

    def on_turn() -> None:
        nonlocal turned
        turned = True

    looked_at = clock()
    slice_end = looked_at + _SLICE
    loop.call_soon(on_turn)
    look_at, looked_index, span = 1, 0, 1

    # Sampled items are traced (`engine/timeline.py`): the first HEAD, then the next one taken after
    # a look at the clock SAMPLE after the last. An item not traced costs one comparison with `sample_at`.
    tracing = runner.state.timeline is not None
    sample_at = 0 if tracing else _NEVER
    sampled_at = 0.0

    def grow(index: int) -> None:
        size = max(index + 1, 2 * len(outputs))
        outputs.extend([None] * ((size if total is None else min(size, total)) - len(outputs)))

    async def worker() -> None:
        nonlocal done, stop, turned, looked_at, slice_end, look_at, looked_index, span, sample_at, sampled_at
        for index, item in pending:  # never awaits between next() calls: safe to share
            if stop:
                return  # this item is not started
            index_var.set(index)
            local = item_scope.copy()
            local["item"] = item
            local["index"] = index
            try:
                if index < sample_at:
                    value = await runner.item(local, index)
                else:
                    sample_at = index + 1 if index + 1 < HEAD else _NEVER
                    value = await traced_item(runner, local, index)
            except Exception as exc:
                failures.append((index, describe(exc)))
                if item_finished is not None:
                    item_finished(step, index, False)
                if not keep_going:
                    stop = True  # items in flight elsewhere finish and are recorded
                    return
            else:
                if keep:
                    try:
                        outputs[index] = value
                    except IndexError:
                        grow(index)
                        outputs[index] = value
                done += 1
                if record_index is not None:
                    record_index(index)
                elif record_output is not None:
                    record_output((index, value))
                if item_finished is not None:
                    item_finished(step, index, True)
            # Between items, never between taking an item and starting it: an item taken is run.
            if index >= look_at:
                items_finished(step, done, len(failures))
                now = clock()
                if tracing and sample_at > index and now - sampled_at >= SAMPLE:
                    sample_at, sampled_at = index + 1, now
                if now < slice_end:
                    pace = (now - looked_at) / max(index - looked_index, 1)
                    span = min(_MAX_SPAN, max(1, int(_LOOK / pace))) if pace > 0 else _MAX_SPAN
                    looked_at, looked_index, look_at = now, index, index + span
                elif turned:  # the loop had its turn during this slice: start the next one
                    turned = False
                    loop.call_soon(on_turn)
                    looked_at, slice_end, looked_index, look_at = now, now + _SLICE, index, index + span
                else:
                    ended = slice_end
                    look_at = 0  # the other workers yield too, after their current item
                    await asyncio.sleep(0)  # the loop's turn: timers, signals, I/O, cancellation
                    if slice_end == ended:  # the first worker back starts the next slice
                        turned = False
                        loop.call_soon(on_turn)
                        now = clock()
                        looked_at, slice_end, looked_index, look_at = now, now + _SLICE, index, index + span

    def ended_early() -> list[Any] | None:
        """The outputs of a step that did not run every item (see the docstring)."""
        if not keep:
            return None
        if total is None or total > _PREALLOCATED:
            if total is None:
                size = taken
            else:
                following = next(pending, None)  # the first item not taken, if any
                size = following[0] if following is not None else total
            del outputs[size:]
            outputs.extend([None] * (size - len(outputs)))
        return outputs

    workers = step.concurrency if total is None else max(1, min(step.concurrency, total))
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())
    except asyncio.CancelledError:
        runner.progress = (ended_early(), total, done, len(failures))
        raise
    finally:
        items_finished(step, done, len(failures))
    count = total if total is not None else done + len(failures)
    if failures:
        raise ItemsFailed(failures, count, ended_early(), done)
    if keep and total is None:
        del outputs[count:]  # grown by doubling past the last item
    return (outputs if keep else None), count, 0
