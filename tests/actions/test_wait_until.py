"""Specification of `wait_until`: a request repeated every `interval` until `until` holds about the
response, or `timeout` passes. Long waits run on injected time (the run options `clock` and `sleep`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

import orchestrator
from orchestrator.actions.http import WaitUntil
from orchestrator.sandbox import SandboxSettings, start_sandbox
from tests.actions import Clock, Server, one_step, run

Write = Callable[..., Path]


async def test_polls_an_operation_until_done(write_playbook: Write) -> None:
    """Against the sandbox: create a network, then poll its operation until it is done."""
    async with start_sandbox(SandboxSettings(operation_delay=0.2)) as sandbox:
        path = write_playbook(one_step(
            "  - id: net\n"
            '    http: {method: POST, url: "{{ api }}/v1/networks", json: {name: web}}\n'
            "  - id: ready\n"
            "    wait_until:\n"
            '      url: "{{ api }}{{ steps.net.output.json.operation.url }}"\n'
            "      until: response.json.status == 'done'\n"
            "      interval: 50ms\n"
            "      timeout: 10s\n"
        ))
        result = await run(path, vars={"api": sandbox.url})
        stats = await sandbox.stats()
    assert result.status == "succeeded"
    out = result.step("ready").output
    assert out["status"] == 200 and out["json"]["status"] == "done" and out["json"]["resource"]["status"] == "ready"
    assert stats["requests"]["by_method"]["GET"] >= 2  # it did poll, and stopped when done


async def test_times_out_with_a_clear_error(server: Server, write_playbook: Write) -> None:
    """A condition that never holds fails after `timeout`, once, naming the condition and the last status."""
    server.script("/op", (200, {"status": "running"}, {}))
    path = write_playbook(one_step(
        "  - id: wait\n    retry: {attempts: 3, delay: 0}\n"
        '    wait_until: {url: "{{ api }}/op", until: "response.json.status == \'done\'", interval: 1s, timeout: 60s}\n'
    ))
    clock = Clock()
    result = await run(path, vars={"api": server.url}, sleep=clock.sleep, clock=clock)
    step = result.step("wait")
    assert step.status == "failed" and step.attempts == 1
    assert step.error == "step 'wait': condition not met after 60s: response.json.status == 'done'; last status 200"
    assert len(server.seen) == 61  # at 0 s, 1 s, ... 60 s
    assert sum(clock.waits) == 60


async def test_transient_statuses_are_tolerated_and_retry_after_honoured(server: Server, write_playbook: Write) -> None:
    """5xx and 429 while polling are waited out; a 429's Retry-After is the minimum gap before the next poll."""
    server.script(
        "/op",
        (503, {"error": "busy"}, {}),
        (500, {"error": "oops"}, {}),
        (429, {"error": "slow down"}, {"Retry-After": "7"}),
        (200, {"status": "running"}, {}),
        (200, {"status": "done"}, {}),
    )
    path = write_playbook(one_step(
        '  - id: wait\n    wait_until: {url: "{{ api }}/op", until: "{{ response.json.status == \'done\' }}", interval: 2s}\n'
    ))
    clock = Clock()
    result = await run(path, vars={"api": server.url}, sleep=clock.sleep, clock=clock)
    assert result.step("wait").status == "succeeded"
    assert result.step("wait").output["json"] == {"status": "done"}
    assert clock.waits == [2.0, 2.0, 7.0, 2.0]


async def test_retry_after_past_the_deadline_gives_up_at_once(server: Server, write_playbook: Write) -> None:
    """A server asking to wait beyond the timeout ends the wait now instead of polling against its wish."""
    server.script("/op", (503, {}, {"Retry-After": "120"}))
    path = write_playbook(one_step('  - id: wait\n    wait_until: {url: "{{ api }}/op", until: "true", timeout: 30s}\n'))
    clock = Clock()
    result = await run(path, vars={"api": server.url}, sleep=clock.sleep, clock=clock)
    assert result.step("wait").error == "step 'wait': condition not met after 30s: true; last status 503"
    assert len(server.seen) == 1 and clock.waits == []


async def test_dropped_connections_are_tolerated(server: Server, write_playbook: Write) -> None:
    """A connection dropped mid-poll is one failed poll, not a failed step."""

    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    # aiohttp itself resends a GET once on a dropped connection; the second drop reaches us.
    server.script("/op", drop, drop, (200, {"status": "done"}, {}))
    path = write_playbook(one_step('  - id: wait\n    wait_until: {url: "{{ api }}/op", until: response.json.status == "done"}\n'))
    clock = Clock()
    result = await run(path, vars={"api": server.url}, sleep=clock.sleep, clock=clock)
    assert result.step("wait").status == "succeeded"
    assert len(server.seen) == 3 and clock.waits == [1.0]


async def test_unexpected_status_fails_at_once(server: Server, write_playbook: Write) -> None:
    """A status neither expected nor transient (a 404) ends the wait at once, naming the request."""
    path = write_playbook(one_step('  - id: wait\n    wait_until: {url: "{{ api }}/nothing?token=abc123", until: "true"}\n'))
    clock = Clock()
    result = await run(path, vars={"api": server.url}, sleep=clock.sleep, clock=clock)
    step = result.step("wait")
    assert step.status == "failed" and len(server.seen) == 1
    assert f"step 'wait': GET {server.url}/nothing?token=*** answered 404, expected 2xx" in str(step.error)


async def test_expect_lets_until_see_other_statuses(server: Server, write_playbook: Write) -> None:
    """With `expect`, `until` is evaluated on those statuses too (here: wait for a 404 after a delete)."""
    server.script("/vm", (200, {"status": "deleting"}, {}), (404, {"error": "gone"}, {}))
    path = write_playbook(one_step(
        '  - id: gone\n    wait_until: {url: "{{ api }}/vm", expect: [200, 404], until: response.status == 404, interval: 10ms}\n'
    ))
    result = await run(path, vars={"api": server.url})
    assert result.step("gone").status == "succeeded" and result.step("gone").output["status"] == 404


async def test_until_sees_the_items_scope(server: Server, write_playbook: Write) -> None:
    """Inside a `for_each`, `until` can use `item` beside `response`; polls carry no Idempotency-Key."""
    server.script("/count", (200, {"n": 1}, {}), (200, {"n": 2}, {}), (200, {"n": 3}, {}))
    path = write_playbook(one_step(
        '  - id: wait\n    for_each: [2, 3]\n    concurrency: 1\n'
        '    wait_until: {method: POST, url: "{{ api }}/count", json: {}, until: response.json.n >= item, interval: 10ms}\n'
    ))
    result = await run(path, vars={"api": server.url})
    assert result.status == "succeeded"
    assert [o["json"]["n"] for o in result.step("wait").output] == [2, 3]
    assert all("Idempotency-Key" not in s.headers for s in server.seen)


def test_static_problems_are_plan_errors_with_locations(write_playbook: Write) -> None:
    """A relative URL, a bad method and an unknown name in `until` are found before the run; `response` is known."""
    path = write_playbook(
        "name: checks\n"
        "steps:\n"
        "  - id: wait\n"
        "    wait_until:\n"
        "      method: GRAB\n"
        "      url: v1/ops/1\n"
        "      until: respnse.json.done\n"
        "  - id: fine\n"
        '    wait_until: {url: "http://127.0.0.1:1/", until: "response.status == 200"}\n'
    )
    with pytest.raises(orchestrator.PlaybookError) as caught:
        orchestrator.plan(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{path}:5:15: steps[0].wait_until.method: unknown HTTP method 'GRAB'")
    assert lines[1].startswith(f"{path}:6:12: steps[0].wait_until.url: expected an absolute http(s) URL")
    assert lines[2].startswith(f"{path}:7:14: steps[0].wait_until.until: unknown name 'respnse'")


def test_read_only_when_get() -> None:
    """A GET wait reads only; a POST wait does not."""
    assert WaitUntil().is_read_only({"url": "x", "until": True})
    assert not WaitUntil().is_read_only({"method": "POST", "url": "x", "until": True})
