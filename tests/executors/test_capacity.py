"""Capacity: FIFO hand-over, cancellation of waiters (also one just handed a slot), resizing the total."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.executors.capacity import Capacity


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def queue(capacity: Capacity, order: list[str], name: str) -> asyncio.Task[None]:
    async def wait() -> None:
        await capacity.take()
        order.append(name)

    task = asyncio.create_task(wait())
    await settle()  # in the queue before the next one
    return task


async def test_a_freed_slot_goes_to_the_longest_waiter_not_a_newcomer() -> None:
    """Waiters are served first in, first out, and a slot given back is handed over, so try_take by a newcomer fails."""
    capacity = Capacity(1)
    assert capacity.try_take()
    order: list[str] = []
    tasks = [await queue(capacity, order, name) for name in ("a", "b", "c")]
    assert capacity.waiting == 3
    for expected in ("a", "b", "c"):
        capacity.give_back()
        assert not capacity.try_take()  # handed over: still held, the waiter has not even run yet
        await settle()
        assert order[-1] == expected
        assert capacity.held == 1
    capacity.give_back()
    assert capacity.held == 0
    await asyncio.gather(*tasks)


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    """A waiter cancelled while queued takes nothing; the next one in line gets the slot."""
    capacity = Capacity(1)
    assert capacity.try_take()
    order: list[str] = []
    first = await queue(capacity, order, "first")
    second = await queue(capacity, order, "second")
    first.cancel()
    await settle()
    assert capacity.waiting == 1
    capacity.give_back()
    await second
    assert order == ["second"]
    assert first.cancelled()
    assert capacity.held == 1


async def test_a_waiter_cancelled_just_after_being_handed_a_slot_passes_it_on() -> None:
    """The slot handed to a waiter that is cancelled before it runs goes to the next waiter, not lost."""
    capacity = Capacity(1)
    assert capacity.try_take()
    order: list[str] = []
    first = await queue(capacity, order, "first")
    second = await queue(capacity, order, "second")
    capacity.give_back()  # handed to `first`, which has not run yet
    first.cancel()
    await settle()
    assert first.cancelled()
    assert order == ["second"]
    assert capacity.held == 1
    await second
    capacity.give_back()
    assert capacity.held == 0
    assert capacity.try_take()


async def test_raising_the_total_admits_waiters_at_once() -> None:
    """A larger total hands the new slots to waiters in order."""
    capacity = Capacity(1)
    assert capacity.try_take()
    order: list[str] = []
    tasks = [await queue(capacity, order, name) for name in ("a", "b", "c")]
    capacity.total = 3
    await settle()
    assert order == ["a", "b"]
    assert capacity.held == 3 and capacity.waiting == 1
    capacity.give_back()
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]


async def test_lowering_the_total_lets_the_holders_drain() -> None:
    """Below the current holders, given-back slots are not handed over until the count is under the new total."""
    capacity = Capacity(3)
    assert capacity.try_take() and capacity.try_take() and capacity.try_take()
    order: list[str] = []
    waiter = await queue(capacity, order, "w")
    capacity.total = 1
    capacity.give_back()
    capacity.give_back()
    await settle()
    assert order == [] and capacity.held == 1
    capacity.give_back()  # the last holder of the old total: its slot is the one slot now
    await waiter
    assert order == ["w"] and capacity.held == 1
    assert not capacity.try_take()


def test_a_total_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Capacity(0)
    capacity = Capacity(2)
    with pytest.raises(ValueError, match="at least 1"):
        capacity.total = 0


async def test_failing_the_waiters_raises_in_each_and_leaves_the_holders_alone() -> None:
    """`fail_waiters` (its owner is closing) makes every queued caller raise the error; slots
    already held stay held, and a slot given back afterwards is simply free."""
    capacity = Capacity(1)
    await capacity.take()
    waiters = [asyncio.ensure_future(capacity.take()) for _ in range(2)]
    await asyncio.sleep(0)
    capacity.fail_waiters(RuntimeError("closing"))
    for waiter in waiters:
        with pytest.raises(RuntimeError, match="closing"):
            await waiter
    assert (capacity.held, capacity.waiting) == (1, 0)
    capacity.give_back()
    assert capacity.try_take() is True
