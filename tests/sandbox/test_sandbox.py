"""Specification of the sandbox cloud API, exercised over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from orchestrator.sandbox import RunningSandbox, SandboxProcess, SandboxSettings, start_sandbox

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with start_sandbox(SandboxSettings(operation_delay=0.05, seed=1)) as running:
        yield running


@pytest.fixture
async def http(sandbox: RunningSandbox) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=sandbox.url) as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with http.request(method, path, **kwargs) as response:
        body = await response.json() if response.status != 204 else None
        return response.status, body


async def wait_operation(http: aiohttp.ClientSession, url: str, timeout: float = 3.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, op = await call(http, "GET", url)
        assert status == 200
        if op["status"] != "running" or time.monotonic() > deadline:
            return op  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)


async def make_network(http: aiohttp.ClientSession) -> str:
    status, body = await call(http, "POST", "/v1/networks", json={"name": "net"})
    assert status == 202
    return body["id"]  # type: ignore[no-any-return]


async def test_async_create_completes_through_operation(http: aiohttp.ClientSession) -> None:
    """A create answers 202 pending with an operation that finishes and makes the resource ready."""
    status, net = await call(http, "POST", "/v1/networks", json={"name": "main", "cidr": "10.0.7.0/24"})
    assert status == 202 and net["status"] == "pending" and net["id"].startswith("net-")
    assert net["operation"]["url"] == f"/v1/operations/{net['operation']['id']}"
    op = await wait_operation(http, net["operation"]["url"])
    assert op["status"] == "done" and op["resource_id"] == net["id"] and op["resource"]["status"] == "ready"

    status, vm = await call(
        http, "POST", "/v1/vms", json={"name": "web-1", "network_id": net["id"], "cpu": 2}
    )
    assert status == 202 and vm["id"].startswith("vm-")
    status, health = await call(http, "GET", f"/v1/vms/{vm['id']}/health")
    assert (status, health["healthy"]) == (503, False)
    op = await wait_operation(http, vm["operation"]["url"])
    assert op["status"] == "done"
    status, vm = await call(http, "GET", f"/v1/vms/{vm['id']}")
    assert vm["status"] == "running" and vm["ip"].startswith("10.0.7.") and vm["cpu"] == 2
    status, health = await call(http, "GET", f"/v1/vms/{vm['id']}/health")
    assert (status, health["healthy"]) == (200, True)
    status, listing = await call(http, "GET", "/v1/vms")
    assert [item["id"] for item in listing["items"]] == [vm["id"]]


async def test_synchronous_creates_and_validation(http: aiohttp.ClientSession) -> None:
    """DNS records and LB members answer 201; bad input answers 400/422 JSON errors."""
    net_id = await make_network(http)
    status, record = await call(http, "POST", "/v1/dns/records", json={"name": "www", "value": "10.0.1.5"})
    assert status == 201 and record["type"] == "A" and record["id"].startswith("dns-")
    _, vm = await call(http, "POST", "/v1/vms", json={"name": "a", "network_id": net_id})
    _, lb = await call(http, "POST", "/v1/load_balancers", json={"name": "lb", "network_id": net_id})
    status, member = await call(
        http, "POST", f"/v1/load_balancers/{lb['id']}/members", json={"vm_id": vm["id"]}
    )
    assert status == 201 and member["vm_id"] == vm["id"]
    _, lb = await call(http, "GET", f"/v1/load_balancers/{lb['id']}")
    assert lb["members"] == [vm["id"]]

    assert (await call(http, "POST", "/v1/vms", json={"network_id": net_id}))[0] == 422
    status, error = await call(http, "POST", "/v1/vms", json={"name": "b", "network_id": "net-00000000"})
    assert status == 422 and "network_id" in error["error"]
    assert (await call(http, "POST", "/v1/networks", data=b"{not json"))[0] == 400
    assert (await call(http, "GET", "/v1/vms/vm-00000000"))[0] == 404


async def test_idempotent_replay_creates_once(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    """Repeating a POST with the same Idempotency-Key returns the first answer and creates nothing new."""
    headers = {"Idempotency-Key": "create-net-1"}
    first = await call(http, "POST", "/v1/networks", json={"name": "n"}, headers=headers)
    async with http.post("/v1/networks", json={"name": "n"}, headers=headers) as response:
        second = (response.status, await response.json())
        assert response.headers["Idempotent-Replayed"] == "true"
    assert first == second and first[0] == 202
    stats = await sandbox.stats()
    assert stats["created"]["networks"] == 1 and stats["idempotent_replays"] == 1


async def test_fault_injection_creates_nothing(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    """With fault_rate=1 every call is a 503 that changes nothing, and its idempotency key is not kept."""
    sandbox.settings.fault_rate = 1.0
    headers = {"Idempotency-Key": "k"}
    status, body = await call(http, "POST", "/v1/networks", json={"name": "n"}, headers=headers)
    assert (status, body) == (503, {"error": "injected fault"})
    assert (await sandbox.stats())["created"]["networks"] == 0
    async with http.patch("/v1/_settings", json={"fault_rate": 0.0}) as response:  # control calls never fault
        assert response.status == 200
    assert (await call(http, "POST", "/v1/networks", json={"name": "n"}, headers=headers))[0] == 202
    stats = await sandbox.stats()
    assert stats["created"]["networks"] == 1 and stats["idempotent_replays"] == 0


async def test_a_lost_response_made_the_change_and_the_keyed_retry_is_replayed(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    """With lost_rate=1 a create is made but its connection drops unanswered; the same POST with the
    same key then gets the original answer (replays are never lost) and creates nothing more."""
    sandbox.settings.lost_rate = 1.0
    headers = {"Idempotency-Key": "lost-1"}
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(http, "POST", "/v1/networks", json={"name": "n"}, headers=headers)
    stats = await sandbox.stats()
    assert (stats["created"]["networks"], stats["lost_responses"], stats["requests"]["by_status"]) == (1, 1, {"0": 1})
    status, body = await call(http, "POST", "/v1/networks", json={"name": "n"}, headers=headers)
    assert status == 202 and body["name"] == "n"
    stats = await sandbox.stats()
    assert (stats["created"]["networks"], stats["idempotent_replays"], stats["lost_responses"]) == (1, 1, 1)


async def test_seeded_faults_are_reproducible() -> None:
    """The same seed gives the same sequence of injected faults."""
    runs = []
    for _ in range(2):
        async with (
            start_sandbox(SandboxSettings(fault_rate=0.5, seed=42)) as running,
            aiohttp.ClientSession(base_url=running.url) as http,
        ):
            runs.append([(await call(http, "GET", "/v1/networks"))[0] for _ in range(20)])
    assert runs[0] == runs[1] and {200, 503} <= set(runs[0])


async def test_rate_limit_answers_429_with_retry_after(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    """Requests over rate_limit per second get 429 with Retry-After >= 1 and do nothing."""
    sandbox.settings.rate_limit = 3
    statuses = [(await call(http, "GET", "/v1/networks"))[0] for _ in range(3)]
    assert statuses == [200, 200, 200]
    async with http.post("/v1/networks", json={"name": "n"}) as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) >= 1
    assert (await sandbox.stats())["created"]["networks"] == 0


async def test_never_ready_vm_never_completes(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    """A VM matching a never_ready pattern stays provisioning, its operation running, its health 503."""
    sandbox.settings.never_ready = ("stuck-*",)
    net_id = await make_network(http)
    _, vm = await call(http, "POST", "/v1/vms", json={"name": "stuck-7", "network_id": net_id})
    await asyncio.sleep(0.3)  # six times the operation delay
    op = await wait_operation(http, vm["operation"]["url"], timeout=0.0)
    assert op["status"] == "running" and op["resource"]["status"] == "provisioning"
    assert (await call(http, "GET", f"/v1/vms/{vm['id']}/health"))[0] == 503
    assert (await call(http, "DELETE", f"/v1/vms/{vm['id']}"))[0] == 204
    op = await wait_operation(http, vm["operation"]["url"], timeout=0.0)
    assert op["status"] == "failed"


async def test_delete_and_stats(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    """DELETE answers 204 (404 if unknown) and _stats counts created, deleted and live per collection."""
    net_id = await make_network(http)
    _, vm = await call(http, "POST", "/v1/vms", json={"name": "a", "network_id": net_id})
    _, lb = await call(http, "POST", "/v1/load_balancers", json={"name": "lb", "network_id": net_id})
    await call(http, "POST", f"/v1/load_balancers/{lb['id']}/members", json={"vm_id": vm["id"]})
    assert (await call(http, "DELETE", f"/v1/load_balancers/{lb['id']}/members/{vm['id']}"))[0] == 204
    assert (await call(http, "DELETE", f"/v1/vms/{vm['id']}"))[0] == 204
    status, error = await call(http, "DELETE", f"/v1/vms/{vm['id']}")
    assert status == 404 and "error" in error
    status, stats = await call(http, "GET", "/v1/_stats")
    assert stats == await sandbox.stats()
    assert stats["created"] == {
        "networks": 1,
        "vms": 1,
        "load_balancers": 1,
        "dns_records": 0,
        "lb_members": 1,
    }
    assert stats["deleted"] == {
        "networks": 0,
        "vms": 1,
        "load_balancers": 0,
        "dns_records": 0,
        "lb_members": 1,
    }
    assert stats["live"] == {"networks": 1, "vms": 0, "load_balancers": 1, "dns_records": 0, "lb_members": 0}
    assert stats["requests"]["by_status"]["204"] == 2 and stats["requests"]["by_method"]["DELETE"] == 3
    await call(http, "POST", "/v1/_reset")
    assert (await sandbox.stats())["live"]["networks"] == 0


async def test_request_log_records_statuses(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    """/v1/_requests lists every non-control request, throttled and faulted ones included, in order."""
    await call(http, "GET", "/v1/networks")
    await call(http, "GET", "/v1/vms/vm-00000000")
    sandbox.settings.fault_rate = 1.0
    await call(http, "GET", "/v1/networks")
    sandbox.settings.fault_rate, sandbox.settings.rate_limit = 0.0, 1
    await call(http, "GET", "/v1/networks")
    await call(http, "GET", "/v1/networks")
    _, log = await call(http, "GET", "/v1/_requests")
    assert [(item["method"], item["path"], item["status"]) for item in log["items"]] == [
        ("GET", "/v1/networks", 200),
        ("GET", "/v1/vms/vm-00000000", 404),
        ("GET", "/v1/networks", 503),
        ("GET", "/v1/networks", 200),
        ("GET", "/v1/networks", 429),
    ]
    times = [item["t"] for item in log["items"]]
    assert times == sorted(times) and times[-1] <= time.monotonic()


async def test_latency_is_applied(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    """Every API request takes at least `latency` seconds."""
    sandbox.settings.latency = 0.05
    started = time.monotonic()
    assert (await call(http, "GET", "/v1/networks"))[0] == 200
    assert time.monotonic() - started >= 0.05


async def test_settings_can_be_read_and_changed(http: aiohttp.ClientSession) -> None:
    """PATCH /v1/_settings changes settings at runtime and rejects invalid values with 422."""
    status, settings = await call(
        http, "PATCH", "/v1/_settings", json={"rate_limit": 50, "never_ready": ["x*"]}
    )
    assert status == 200 and settings["rate_limit"] == 50 and settings["never_ready"] == ["x*"]
    assert (await call(http, "GET", "/v1/_settings"))[1] == settings
    assert (await call(http, "PATCH", "/v1/_settings", json={"fault_rate": 2}))[0] == 422
    assert (await call(http, "PATCH", "/v1/_settings", json={"colour": "red"}))[0] == 422


def test_sandbox_process_starts_answers_and_stops() -> None:
    """SandboxProcess runs the server in a child process, learns its URL and leaves no process behind."""
    settings = SandboxSettings(latency=0.01, rate_limit=100, never_ready=("-odd*",), seed=3)
    with SandboxProcess(settings) as process:
        assert process.url is not None and process.url.startswith("http://127.0.0.1:")
        pid = process.pid
        assert pid is not None
        with urllib.request.urlopen(f"{process.url}/v1/_settings", timeout=5) as response:
            assert json.load(response) == settings.to_json()
    assert process.process is None and process.url is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: the pid no longer exists


def test_sandbox_process_reports_startup_failure() -> None:
    """When the child cannot listen, start() fails with the child's stderr in the message."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = SandboxProcess(port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="cannot serve"):
            process.start()
    assert process.process is None
