"""A server's Retry-After is waited for only as long as the step waits: up to the larger of the
policy's `max_retry_after` (default 5m) and `max_delay`, and never past the run's timeout. A longer
one fails the attempt at once, not retried, and the error says so. Real requests to a scripted
aiohttp server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.actions import Clock, Server, one_step, run

Write = Callable[..., Path]


def _get(retry: str, *, timeout: str = "") -> str:
    step_timeout = f"    timeout: {timeout}\n" if timeout else ""
    return one_step(f'  - id: get\n    retry: {retry}\n{step_timeout}    http: {{url: "{{{{ api }}}}/limited"}}\n')


async def test_a_retry_after_of_a_day_fails_a_step_with_a_5s_timeout_at_once(server: Server, write_playbook: Write) -> None:
    """429 with `Retry-After: 86400` to a step with `timeout: 5s` and retries left: the step fails
    within 6 s (real time), after one request, saying the server's wait is more than it waits."""
    server.script("/limited", (429, {"error": "slow down"}, {"Retry-After": "86400"}), (200, {}, {}))
    path = write_playbook(_get("3", timeout="5s"))
    started = time.monotonic()
    result = await run(path, vars={"api": server.url})
    assert time.monotonic() - started < 6
    step = result.step("get")
    assert result.status == "failed" and step.status == "failed"
    assert step.error is not None
    assert step.error.endswith(
        "; the server asked to retry after 86400s, more than this step waits (max_retry_after 300s); not retried"
    ), step.error
    assert "answered 429" in step.error
    assert len(server.to("/limited")) == 1 and step.attempts == 1


async def test_max_delay_longer_than_max_retry_after_is_the_bound(server: Server, write_playbook: Write) -> None:
    """A step that already waits up to `max_delay: 10m` waits for a 6-minute Retry-After; with the
    defaults (max_delay 30s, max_retry_after 5m), the message names the bound that applied."""
    server.script("/limited", (503, {}, {"Retry-After": "360"}), (200, {}, {}))
    path = write_playbook(_get("{attempts: 2, delay: 0, max_delay: 10m}"))
    clock = Clock()
    result = await run(path, vars={"api": server.url}, sleep=clock.sleep)
    assert result.step("get").status == "succeeded"
    assert clock.waits == [360.0]

    server.seen.clear()
    server.script("/limited", (503, {}, {"Retry-After": "700"}), (200, {}, {}))
    result = await run(path, vars={"api": server.url}, sleep=clock.sleep)
    error = result.step("get").error
    assert error is not None and error.endswith("retry after 700s, more than this step waits (max_delay 600s); not retried"), error


async def test_max_retry_after_is_set_per_step(server: Server, write_playbook: Write) -> None:
    """`max_retry_after: 10s`: a Retry-After of 10 s is waited for, one of 11 s is not."""
    path = write_playbook(_get("{attempts: 3, delay: 0, max_delay: 1s, max_retry_after: 10s}"))
    server.script("/limited", (429, {}, {"Retry-After": "10"}), (200, {}, {}))
    clock = Clock()
    result = await run(path, vars={"api": server.url}, sleep=clock.sleep)
    assert result.step("get").status == "succeeded" and clock.waits == [10.0]

    server.script("/limited", (429, {}, {"Retry-After": "11"}), (200, {}, {}))
    clock = Clock()
    result = await run(path, vars={"api": server.url}, sleep=clock.sleep)
    error = result.step("get").error
    assert error is not None and error.endswith("retry after 11s, more than this step waits (max_retry_after 10s); not retried")
    assert clock.waits == []


async def test_a_too_long_retry_after_on_a_later_attempt_ends_the_retries(server: Server, write_playbook: Write) -> None:
    """The rule holds for every attempt that would be followed by another: the first 503 (Retry-After
    1) is waited out, the second (Retry-After 3600) ends the step with attempts left."""
    server.script("/limited", (503, {}, {"Retry-After": "1"}), (503, {}, {"Retry-After": "3600"}), (200, {}, {}))
    path = write_playbook(_get("{attempts: 5, delay: 0}"))
    clock = Clock()
    result = await run(path, vars={"api": server.url}, sleep=clock.sleep)
    step = result.step("get")
    assert step.status == "failed" and step.attempts == 2 and clock.waits == [1.0]
    assert step.error is not None and "retry after 3600s, more than this step waits (max_retry_after 300s); not retried" in step.error


async def test_the_last_attempt_fails_with_the_servers_answer_alone(server: Server, write_playbook: Write) -> None:
    """No attempt follows the last one, so its Retry-After refuses nothing: the error is the answer."""
    server.script("/limited", (429, {}, {"Retry-After": "86400"}))
    path = write_playbook(_get("1"))
    result = await run(path, vars={"api": server.url})
    error = result.step("get").error
    assert error is not None and "answered 429" in error and "not retried" not in error


async def test_a_retry_after_past_the_runs_timeout_is_not_waited_for(server: Server, write_playbook: Write) -> None:
    """With the run's timeout at 3 s, a Retry-After of 60 s (within the step's bounds) fails the
    attempt at once, saying what the run has left (real time)."""
    server.script("/limited", (429, {}, {"Retry-After": "60"}), (200, {}, {}))
    path = write_playbook(_get("3"))
    started = time.monotonic()
    result = await run(path, vars={"api": server.url}, timeout=3)
    assert time.monotonic() - started < 2
    error = result.step("get").error
    assert error is not None and "; the server asked to retry after 60s, more than the run has left (" in error, error
    assert error.endswith(" of its 3s timeout); not retried"), error
    assert len(server.to("/limited")) == 1
