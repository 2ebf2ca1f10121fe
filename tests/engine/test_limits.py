"""Named limits: a concurrency cap shared by everyone who names it, handed on in order, never leaked."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

import orchestrator
from orchestrator.engine.limits import Limit
from orchestrator.model.playbook import LimitSpec

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

H = "tests.engine.steps_helpers"
T = TypeVar("T")


async def finishes_within(run: Coroutine[Any, Any, T], seconds: float) -> T:
    """The result of `run`, or a test failure (not a hang) if it is still running after `seconds`."""
    task = asyncio.ensure_future(run)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        while not task.done():  # a run stuck in its `finally` steps needs more than one cancellation
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        pytest.fail(f"still running after {seconds}s")
    return task.result()


def capped(concurrency: int) -> Limit:
    return Limit("api", LimitSpec(concurrency=concurrency))


async def hold(limit: Limit, order: list[str], name: str, seconds: float, running: list[int]) -> None:
    await limit.acquire()
    try:
        order.append(name)
        running[0] += 1
        running[1] = max(running[1], running[0])
        await asyncio.sleep(seconds)
    finally:
        running[0] -= 1
        limit.release()


async def test_no_more_than_the_cap_hold_it_and_waiters_go_in_the_order_they_came() -> None:
    limit = capped(2)
    order: list[str] = []
    running = [0, 0]  # now, most at once
    await asyncio.gather(*(hold(limit, order, f"w{i}", 0.01, running) for i in range(8)))
    assert running[1] == 2
    assert order == [f"w{i}" for i in range(8)]


async def test_a_waiter_cancelled_in_the_queue_takes_no_slot_with_it() -> None:
    limit = capped(1)
    await limit.acquire()
    waiter = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limit.release()
    await asyncio.wait_for(limit.acquire(), 1)  # the one slot is free again


async def test_a_slot_handed_to_a_waiter_cancelled_in_the_same_turn_is_passed_on() -> None:
    limit = capped(1)
    await limit.acquire()
    first = asyncio.ensure_future(limit.acquire())
    second = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0)
    limit.release()  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)  # so `second` gets it


async def test_an_attempt_cancelled_while_waiting_for_its_second_limit_gives_back_the_first(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """A step naming two limits holds the first while it waits for the second; cancelled there (here
    by a failing sibling), it must give the first back, or later steps would wait on it forever."""
    plan = plan_of(f"""
        name: two limits
        limits:
          outer: {{concurrency: 1}}
          inner: {{concurrency: 1}}
        steps:
          - {{id: holder, limit: inner, call: '{H}:slow', with: {{seconds: 0.5}}}}
          - {{id: waiter, limit: [outer, inner], call: '{H}:slow', with: {{seconds: 0}}}}
          - {{id: breaker, call: '{H}:fail_after', with: {{seconds: 0.1}}}}
        finally:
          - {{id: after, limit: outer, set: reached}}
        """)
    result = await finishes_within(orchestrator.arun(plan), 5)
    assert result.step("waiter").status == "cancelled"
    assert result.step("after").status == "succeeded"


async def test_take_succeeds_only_when_no_wait_is_due_and_never_jumps_the_queue() -> None:
    """`take` is the no-wait path: it takes a free slot, or nothing; waiters keep their turn."""
    limit = capped(1)
    assert limit.take() is True
    assert limit.take() is False  # at the cap: nothing taken
    waiter = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0)
    limit.release()  # the slot goes to the waiter...
    assert limit.take() is False  # ...not to a caller that did not wait
    await asyncio.wait_for(waiter, 1)
    limit.release()
    assert limit.take() is True


def test_take_under_a_rate_starts_one_and_refuses_the_next_until_its_slot() -> None:
    now = [100.0]
    limit = Limit("api", LimitSpec(rate="2/s"))
    assert limit._rate is not None
    limit._rate.clock = lambda: now[0]
    assert limit.take() is True
    assert limit.take() is False  # 0.5 s must pass first
    now[0] += 0.5
    assert limit.take() is True


async def test_steps_naming_the_same_limits_in_opposite_orders_both_finish(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """Two fan-outs naming limits [a, b] and [b, a] (each `concurrency: 1`) cannot deadlock: every
    attempt takes its limits in the playbook's one order (that of `limits:`), whatever order the
    step lists them in, so no attempt holds b while waiting for a."""
    plan = plan_of(f"""
        name: opposite orders
        limits:
          a: {{concurrency: 1}}
          b: {{concurrency: 1}}
        steps:
          - {{id: forward, for_each: "{{{{ range(50) }}}}", concurrency: 10, limit: [a, b], call: '{H}:slow', with: {{seconds: 0}}}}
          - {{id: backward, for_each: "{{{{ range(50) }}}}", concurrency: 10, limit: [b, a], call: '{H}:slow', with: {{seconds: 0}}}}
        """)
    assert plan.step("forward").limits == plan.step("backward").limits == ("a", "b")
    result = await finishes_within(orchestrator.arun(plan), 20)
    assert result.status == "succeeded", [(s.id, s.error) for s in result.steps]
    assert [s.items for s in result.steps] == [50, 50]
