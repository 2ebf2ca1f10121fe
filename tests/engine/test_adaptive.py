"""`concurrency: auto`: the gradient controller's decisions, a shared Retry-After seen from the
server, and the adaptive limit against the sandbox's capacity."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

import orchestrator
from orchestrator.engine.adaptive import FLOOR_PERIOD, Gradient
from orchestrator.engine.limits import Limit
from orchestrator.errors import PlaybookError
from orchestrator.executors.capacity import Capacity
from orchestrator.model.playbook import LimitSpec
from orchestrator.sandbox import SandboxSettings, start_sandbox
from tests.actions import serve

if TYPE_CHECKING:
    from collections.abc import Callable


def held(capacity: Capacity, n: int) -> None:
    """Make `n` slots of `capacity` held (as if `n` attempts were in flight)."""
    while capacity.held > n:
        capacity.give_back()
    while capacity.held < n:
        capacity.total = max(capacity.total, n)
        assert capacity.try_take()


def window(gradient: Gradient, rtt: float, now: float, busy: bool = True) -> float:
    """Feed one full window of samples of latency `rtt`; returns the limit after it."""
    total = gradient.capacity.total
    held(gradient.capacity, total if busy else 0)
    gradient.capacity.total = total
    for _ in range(math.ceil(gradient.limit)):  # a window closes at a limit's worth of samples
        gradient.sample(rtt, now)
    return gradient.limit


def test_slow_start_doubles_while_latency_stays_at_its_floor_and_stops_at_the_maximum() -> None:
    """8, 16, 32, 64, then the maximum of 100: each window as fast as the first."""
    gradient = Gradient(Capacity(1), 1, 100, now=0.0)
    seen = [window(gradient, 0.05, now=t) for t in (0.1, 0.2, 0.3, 0.4, 0.5)]
    assert seen == [16, 32, 64, 100, 100]
    assert gradient.capacity.total == 100


def test_a_queue_in_the_latency_ends_slow_start_and_shrinks_the_limit_toward_the_gradient() -> None:
    """Once latency doubles, the limit falls (half way to limit * 1.25 * floor / rtt + 1),
    and keeps falling while the latency stays high; back at the floor, it grows again by sqrt(limit)."""
    gradient = Gradient(Capacity(1), 1, 256, now=0.0, initial=64)
    window(gradient, 0.05, now=1.0)  # the floor: 50 ms
    limit = gradient.limit
    after = window(gradient, 0.10, now=2.0)
    assert not gradient.slow_start
    assert after == pytest.approx(limit + (limit * 0.625 + 1 - limit) / 2)
    lower = window(gradient, 0.10, now=3.0)
    assert lower < after
    assert window(gradient, 0.05, now=4.0) == pytest.approx(lower + lower**0.5)


def test_a_burst_of_drops_halves_the_limit_once() -> None:
    """Twenty 429s of attempts started before the first one's decrease halve the limit once; a drop
    of an attempt started after that decrease halves it again."""
    gradient = Gradient(Capacity(1), 1, 256, now=0.0, initial=40)
    for _ in range(20):
        gradient.drop(started=1.0, now=2.0)
    assert gradient.limit == 20 and gradient.capacity.total == 20
    gradient.drop(started=2.5, now=3.0)
    assert gradient.limit == 10


def test_drops_never_take_the_limit_below_its_minimum() -> None:
    gradient = Gradient(Capacity(1), 6, 256, now=0.0, initial=8)
    for t in range(1, 5):
        gradient.drop(started=float(t), now=t + 0.5)
    assert gradient.limit == 6


def test_a_limit_that_is_not_used_does_not_grow() -> None:
    """Windows in which fewer than half the slots were ever held leave the limit as it is (the tail
    of a fan-out, a slow producer): nothing was learnt about the limit."""
    gradient = Gradient(Capacity(1), 1, 256, now=0.0, initial=32)
    assert [window(gradient, 0.05, now=t, busy=False) for t in (0.1, 0.2, 0.3)] == [32, 32, 32]


def test_the_floor_is_forgotten_after_two_periods() -> None:
    """A target that became slower for good is measured anew: its old, faster floor expires."""
    gradient = Gradient(Capacity(1), 1, 256, now=0.0, initial=16)
    window(gradient, 0.05, now=0.1)
    window(gradient, 0.20, now=FLOOR_PERIOD + 1)
    assert gradient.floor == pytest.approx(0.05)
    window(gradient, 0.20, now=2 * FLOOR_PERIOD + 2)
    assert gradient.floor == pytest.approx(0.20)


def test_min_and_max_concurrency_need_auto_and_come_in_order(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """`min_concurrency` without `concurrency: auto`, or above `max_concurrency`, is a located error."""
    with pytest.raises(PlaybookError, match="need `concurrency: auto`"):
        plan_of("name: p\nsteps:\n  - {id: a, for_each: [1], concurrency: 4, min_concurrency: 2, set: 1}\n")
    with pytest.raises(PlaybookError, match=r"min_concurrency \(9\) is more than max_concurrency \(3\)"):
        plan_of("name: p\nlimits:\n  api: {concurrency: auto, min_concurrency: 9, max_concurrency: 3}\nsteps:\n  - {id: a, set: 1}\n")


def test_an_auto_limit_starts_within_its_bounds() -> None:
    limit = Limit("api", LimitSpec(concurrency="auto", min_concurrency=12, max_concurrency=20))
    assert limit.adaptive is not None and limit.concurrency == 12
    assert Limit("api", LimitSpec(concurrency=5)).adaptive is None


@pytest.mark.parametrize("spec", ["{concurrency: 4}", "{concurrency: auto, max_concurrency: 4}"])
async def test_one_retry_after_pauses_new_starts_of_every_step_sharing_the_limit(
    spec: str, plan_of: Callable[..., orchestrator.Plan]
) -> None:
    """Step `b` fetches 60 items, two at a time; step `a` gets one 429 with `Retry-After: 1`. Both name
    the limit `api`, so from the moment of that 429 the server sees no new request from either step
    for a second; then both go on (and `b` still had items left to start)."""
    async with serve() as server:
        server.script("/a", (429, {"error": "slow down"}, {"Retry-After": "1"}), (200, {"ok": True}, {}))

        async def slow(request: web.Request) -> web.Response:
            import asyncio

            await asyncio.sleep(0.02)
            return web.json_response({"ok": True})

        server.script("/b", slow)
        plan = plan_of(
            f"name: shared\nvars: {{api: '{server.url}'}}\nlimits:\n  api: {spec}\n"
            "steps:\n"
            "  - {id: warm, http: {url: '{{ api }}/b'}}\n"
            "  - id: a\n    needs: [warm]\n    limit: api\n    retry: {attempts: 3, delay: 10ms}\n"
            "    http: {url: '{{ api }}/a'}\n"
            "  - id: b\n    for_each: '{{ range(60) }}'\n    concurrency: 2\n    limit: api\n"
            "    http: {url: '{{ api }}/b', params: {n: '{{ item }}'}}\n"
        )
        result = await orchestrator.arun(plan)
    assert result.status == "succeeded", [s.error for s in result.steps if s.error]
    refused = server.to("/a")[0].at
    b_items = [s.at for s in server.to("/b") if s.query]
    paused = [t for t in (*b_items, *(s.at for s in server.to("/a")[1:])) if refused + 0.02 < t < refused + 0.98]
    assert paused == []
    assert any(t < refused for t in b_items), "b was running when the 429 came"
    assert any(t >= refused + 1.0 for t in b_items), "b had items left that started after the pause"
    assert server.to("/a")[1].at >= refused + 1.0


async def test_auto_concurrency_settles_near_the_sandbox_capacity(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """300 creates with `concurrency: auto` against a sandbox serving 8 at once: every create
    succeeds, the step's result says what it settled on (near the capacity: from its half to three
    times it, far below the default maximum of 256; where exactly it stands when the step ends
    moves with the machine's load), and a fixed step says nothing of it."""
    async with start_sandbox(SandboxSettings(latency=0.02, capacity=8)) as sandbox:
        plan = plan_of(
            f"name: auto\nvars: {{api: '{sandbox.url}'}}\n"
            "steps:\n"
            "  - id: dns\n    for_each: '{{ range(300) }}'\n    concurrency: auto\n"
            "    retry: {attempts: 10, delay: 10ms}\n"
            "    http: {method: POST, url: '{{ api }}/v1/dns/records', json: {name: 'r{{ item }}', value: 10.0.0.1}}\n"
            "  - id: fixed\n    needs: [dns]\n    for_each: '{{ range(3) }}'\n    concurrency: 2\n"
            "    http: {url: '{{ api }}/v1/dns/records'}\n"
        )
        result = await orchestrator.arun(plan)
        stats = await sandbox.stats()
    assert result.status == "succeeded", [s.error for s in result.steps if s.error]
    assert stats["created"]["dns_records"] == 300
    summary = {s["id"]: s for s in result.summary()["steps"]}
    assert 4 <= summary["dns"]["concurrency"] <= 24
    assert "concurrency" not in summary["fixed"]
