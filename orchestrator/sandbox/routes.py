"""The HTTP handlers of the sandbox API: networks, VMs, load balancers, DNS, operations, control.

Each handler validates its request and reads or changes SandboxState; latency, faults, rate
limits and idempotency are not their business (the shaping middleware does that), and errors
are raised as ApiError for the middleware to answer. The URL table is in app.create_app.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from orchestrator.sandbox.shaping import ApiError
from orchestrator.sandbox.state import STATE_KEY, Json, Operation, SandboxSettings, SandboxState

PREFIXES = {"networks": "net", "vms": "vm", "load_balancers": "lb", "dns_records": "dns", "lb_members": "lbm"}
DNS_TYPES = frozenset({"A", "AAAA", "CNAME", "TXT", "MX", "NS", "SRV"})

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _state(request: web.Request) -> SandboxState:
    return request.app[STATE_KEY]


async def _body(request: web.Request) -> Json:
    try:
        data = await request.json() if request.body_exists else {}
    except ValueError as exc:
        raise ApiError(400, "request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    return data


def _text(data: Json, name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if value is None:
        raise ApiError(422, f"missing required field: {name}")
    if not isinstance(value, str) or not value:
        raise ApiError(422, f"{name} must be a non-empty string")
    return value


def _count(data: Json, name: str, default: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(422, f"{name} must be a positive integer")
    return value


def _lookup(state: SandboxState, kind: str, resource_id: str) -> Json:
    resource = state.resources[kind].get(resource_id)
    if resource is None:
        raise ApiError(404, f"{kind} {resource_id} not found")
    return resource


def _reference(state: SandboxState, kind: str, data: Json, name: str) -> str:
    resource_id = _text(data, name)
    if resource_id not in state.resources[kind]:
        raise ApiError(422, f"unknown {name}: {resource_id}")
    return resource_id


def _start_create(state: SandboxState, kind: str, fields: Json) -> web.Response:
    """Store a pending resource and the operation that will make it ready (202 Accepted)."""
    resource_id = state.new_id(PREFIXES[kind], state.resources[kind])
    op_id = state.new_id("op", state.operations)
    never = kind == "vms" and any(fnmatch.fnmatchcase(fields["name"], p) for p in state.settings.never_ready)
    ready_at = time.monotonic() + state.settings.operation_delay
    state.operations[op_id] = Operation(op_id, kind, resource_id, ready_at, never)
    resource = state.resources[kind][resource_id] = {"id": resource_id, **fields, "status": "pending"}
    state.created[kind] += 1
    body = {**resource, "operation": {"id": op_id, "url": f"/v1/operations/{op_id}"}}
    return web.json_response(body, status=202)


async def create_network(request: web.Request) -> web.Response:
    """POST /v1/networks {name, cidr?}: asynchronous create."""
    state, data = _state(request), await _body(request)
    name = _text(data, "name")
    cidr = _text(data, "cidr", f"10.0.{state.created['networks'] % 250 + 1}.0/24")
    try:
        cidr = str(ipaddress.IPv4Network(cidr))
    except ValueError as exc:
        raise ApiError(422, f"cidr is not an IPv4 network: {cidr}") from exc
    return _start_create(state, "networks", {"name": name, "cidr": cidr})


async def create_vm(request: web.Request) -> web.Response:
    """POST /v1/vms {name, network_id, cpu?, memory_mb?}: asynchronous create."""
    state, data = _state(request), await _body(request)
    fields = {
        "name": _text(data, "name"),
        "network_id": _reference(state, "networks", data, "network_id"),
        "cpu": _count(data, "cpu", 1),
        "memory_mb": _count(data, "memory_mb", 1024),
        "ip": None,
    }
    return _start_create(state, "vms", fields)


async def create_load_balancer(request: web.Request) -> web.Response:
    """POST /v1/load_balancers {name, network_id}: asynchronous create."""
    state, data = _state(request), await _body(request)
    name, network_id = _text(data, "name"), _reference(state, "networks", data, "network_id")
    return _start_create(state, "load_balancers", {"name": name, "network_id": network_id, "members": []})


async def create_dns_record(request: web.Request) -> web.Response:
    """POST /v1/dns/records {name, type?, value}: synchronous create (201)."""
    state, data = _state(request), await _body(request)
    name, rtype, value = _text(data, "name"), _text(data, "type", "A").upper(), _text(data, "value")
    if rtype not in DNS_TYPES:
        raise ApiError(422, f"type must be one of {sorted(DNS_TYPES)}")
    record_id = state.new_id(PREFIXES["dns_records"], state.resources["dns_records"])
    record = {"id": record_id, "name": name, "type": rtype, "value": value, "status": "ready"}
    state.resources["dns_records"][record_id] = record
    state.created["dns_records"] += 1
    return web.json_response(record, status=201)


def _remove_member(state: SandboxState, member: Json) -> None:
    del state.resources["lb_members"][member["id"]]
    state.deleted["lb_members"] += 1
    balancer = state.resources["load_balancers"].get(member["load_balancer_id"])
    if balancer is not None:
        balancer["members"].remove(member["vm_id"])


def _find_member(state: SandboxState, lb_id: str, vm_id: str) -> Json | None:
    members = state.resources["lb_members"].values()
    return next((m for m in members if m["load_balancer_id"] == lb_id and m["vm_id"] == vm_id), None)


def _delete(state: SandboxState, kind: str, resource_id: str) -> None:
    _lookup(state, kind, resource_id)
    # Memberships die with their VM or balancer; other references may dangle, as in real clouds.
    for member in list(state.resources["lb_members"].values()):
        if resource_id in (member["vm_id"], member["load_balancer_id"]):
            _remove_member(state, member)
    del state.resources[kind][resource_id]
    state.deleted[kind] += 1
    for op in state.operations.values():
        if op.resource_id == resource_id and op.status == "running":
            op.status, op.error = "failed", f"{resource_id} was deleted before it was ready"


def collection(kind: str) -> tuple[RouteHandler, RouteHandler, RouteHandler]:
    """List, get and delete handlers for one collection."""

    async def list_items(request: web.Request) -> web.Response:
        return web.json_response({"items": list(_state(request).resources[kind].values())})

    async def get_item(request: web.Request) -> web.Response:
        return web.json_response(_lookup(_state(request), kind, request.match_info["id"]))

    async def delete_item(request: web.Request) -> web.Response:
        _delete(_state(request), kind, request.match_info["id"])
        return web.Response(status=204)

    return list_items, get_item, delete_item


async def add_member(request: web.Request) -> web.Response:
    """POST /v1/load_balancers/{id}/members {vm_id}: 201, or 200 if it already is a member."""
    state, data = _state(request), await _body(request)
    balancer = _lookup(state, "load_balancers", request.match_info["id"])
    vm_id = _reference(state, "vms", data, "vm_id")
    existing = _find_member(state, balancer["id"], vm_id)
    if existing is not None:
        return web.json_response(existing, status=200)
    member_id = state.new_id(PREFIXES["lb_members"], state.resources["lb_members"])
    member = {"id": member_id, "load_balancer_id": balancer["id"], "vm_id": vm_id}
    state.resources["lb_members"][member_id] = member
    state.created["lb_members"] += 1
    balancer["members"].append(vm_id)
    return web.json_response(member, status=201)


async def list_members(request: web.Request) -> web.Response:
    """GET /v1/load_balancers/{id}/members."""
    state = _state(request)
    lb_id = _lookup(state, "load_balancers", request.match_info["id"])["id"]
    members = [m for m in state.resources["lb_members"].values() if m["load_balancer_id"] == lb_id]
    return web.json_response({"items": members})


async def remove_member(request: web.Request) -> web.Response:
    """DELETE /v1/load_balancers/{id}/members/{vm_id}."""
    state = _state(request)
    lb_id = _lookup(state, "load_balancers", request.match_info["id"])["id"]
    member = _find_member(state, lb_id, request.match_info["vm_id"])
    if member is None:
        raise ApiError(404, f"{request.match_info['vm_id']} is not a member of {lb_id}")
    _remove_member(state, member)
    return web.Response(status=204)


async def vm_health(request: web.Request) -> web.Response:
    """GET /v1/vms/{id}/health: 200 once the VM is running, else 503."""
    vm = _lookup(_state(request), "vms", request.match_info["id"])
    healthy = vm["status"] == "running"
    return web.json_response({"healthy": healthy, "status": vm["status"]}, status=200 if healthy else 503)


def _operation_json(state: SandboxState, op: Operation) -> Json:
    resource = state.resources[op.kind].get(op.resource_id)
    return {
        "id": op.id,
        "status": op.status,
        "resource_type": op.kind,
        "resource_id": op.resource_id,
        "resource": resource,
        "error": op.error,
    }


async def get_operation(request: web.Request) -> web.Response:
    """GET /v1/operations/{id}."""
    state = _state(request)
    op = state.operations.get(request.match_info["id"])
    if op is None:
        raise ApiError(404, f"operation {request.match_info['id']} not found")
    return web.json_response(_operation_json(state, op))


async def list_operations(request: web.Request) -> web.Response:
    """GET /v1/operations."""
    state = _state(request)
    return web.json_response({"items": [_operation_json(state, op) for op in state.operations.values()]})


async def get_stats(request: web.Request) -> web.Response:
    """GET /v1/_stats."""
    return web.json_response(_state(request).stats())


async def get_requests(request: web.Request) -> web.Response:
    """GET /v1/_requests: every shaped request with its monotonic arrival time and status."""
    return web.json_response({"items": _state(request).requests})


async def post_reset(request: web.Request) -> web.Response:
    """POST /v1/_reset: forget state and statistics, keep settings."""
    _state(request).reset()
    return web.json_response({"status": "reset"})


async def get_settings(request: web.Request) -> web.Response:
    """GET /v1/_settings."""
    return web.json_response(_state(request).settings.to_json())


async def patch_settings(request: web.Request) -> web.Response:
    """PATCH /v1/_settings: change any subset of the settings at runtime."""
    state, data = _state(request), await _body(request)
    names = [f.name for f in dataclasses.fields(SandboxSettings)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ApiError(422, f"unknown settings: {', '.join(unknown)}; known: {', '.join(names)}")
    try:
        updated = dataclasses.replace(state.settings, **data)
    except (TypeError, ValueError) as exc:
        raise ApiError(422, str(exc)) from exc
    for name in names:  # mutate in place: RunningSandbox.settings is the same object
        setattr(state.settings, name, getattr(updated, name))
    if "seed" in data:
        state.reseed()
    state.admission.admit(state.settings.capacity)  # a larger capacity serves queued requests now
    return web.json_response(state.settings.to_json())
