"""The sandbox cloud API: in-memory state, traffic shaping middleware and the /v1 routes."""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import ipaddress
import math
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

Json = dict[str, Any]
KINDS = ("networks", "vms", "load_balancers", "dns_records", "lb_members")
PREFIXES = {"networks": "net", "vms": "vm", "load_balancers": "lb", "dns_records": "dns", "lb_members": "lbm"}
DNS_TYPES = frozenset({"A", "AAAA", "CNAME", "TXT", "MX", "NS", "SRV"})
READY_STATUS = {"networks": "ready", "vms": "running", "load_balancers": "ready"}


class ApiError(Exception):
    """An error answered to the client as `{"error": message}` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _number(value: object, name: str, low: float, high: float = math.inf) -> None:
    # bool is an int subclass; true/false in JSON is never a meaningful number here.
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")


@dataclass
class SandboxSettings:
    """Behaviour knobs of the sandbox; all can be changed at runtime with PATCH /v1/_settings."""

    latency: float = 0.0
    fault_rate: float = 0.0
    lost_rate: float = 0.0
    rate_limit: float | None = None
    operation_delay: float = 0.3
    never_ready: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        _number(self.latency, "latency", 0.0)
        _number(self.fault_rate, "fault_rate", 0.0, 1.0)
        _number(self.lost_rate, "lost_rate", 0.0, 1.0)
        if self.rate_limit is not None:
            _number(self.rate_limit, "rate_limit", 1e-9)
        _number(self.operation_delay, "operation_delay", 0.0)
        if isinstance(self.never_ready, str) or not all(isinstance(p, str) for p in self.never_ready):
            raise ValueError("never_ready must be a list of glob patterns")
        self.never_ready = tuple(self.never_ready)  # JSON gives lists
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError("seed must be an integer or null")

    def to_json(self) -> Json:
        """Return the settings as a JSON-ready dict."""
        return {**dataclasses.asdict(self), "never_ready": list(self.never_ready)}


@dataclass
class Operation:
    """An asynchronous create that finishes `ready_at` (monotonic time), unless `never` is set."""

    id: str
    kind: str
    resource_id: str
    ready_at: float
    never: bool
    status: str = "running"
    error: str | None = None


class SandboxState:
    """Everything the sandbox remembers; mutated only from the event loop thread."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.reset()

    def reseed(self) -> None:
        """Restart the random streams from the `seed` setting."""
        seed = self.settings.seed
        self.fault_rng = random.Random(seed)
        self.lost_rng = random.Random(None if seed is None else f"lost:{seed}")
        # A separate stream for ids keeps the fault sequence independent of how much gets created.
        self.id_rng = random.Random(None if seed is None else f"ids:{seed}")

    def reset(self) -> None:
        """Forget all resources, operations, idempotency keys and statistics (settings stay)."""
        self.reseed()
        self.resources: dict[str, dict[str, Json]] = {kind: {} for kind in KINDS}
        self.operations: dict[str, Operation] = {}
        self.idempotency: dict[str, tuple[str, str, int, bytes]] = {}
        self.requests: list[Json] = []
        self.window: deque[float] = deque()
        self.by_status: Counter[str] = Counter()
        self.by_method: Counter[str] = Counter()
        self.created: Counter[str] = Counter()
        self.deleted: Counter[str] = Counter()
        self.replays = 0
        self.lost = 0
        self.next_host: dict[str, int] = {}

    def new_id(self, prefix: str, taken: Container[str]) -> str:
        """Return a fresh id such as `net-1a2b3c4d` that is not in `taken`."""
        while True:
            candidate = f"{prefix}-{self.id_rng.getrandbits(32):08x}"
            if candidate not in taken:
                return candidate

    def throttle(self, now: float) -> int | None:
        """Admit a request into the sliding window, or return the Retry-After seconds."""
        rate = self.settings.rate_limit
        if rate is None:
            return None
        # Fractional rates (e.g. 0.5/s) become one request per 1/rate seconds.
        capacity = max(1, math.floor(rate))
        span = capacity / rate
        while self.window and self.window[0] <= now - span:
            self.window.popleft()
        if len(self.window) >= capacity:
            return max(1, math.ceil(self.window[0] + span - now))
        self.window.append(now)
        return None

    def advance(self, now: float) -> None:
        """Finish every operation whose time has come (operations progress lazily, on access)."""
        for op in self.operations.values():
            if op.status == "running" and now >= op.ready_at:
                self._finish(op)

    def _finish(self, op: Operation) -> None:
        resource = self.resources[op.kind][op.resource_id]
        if op.never:
            resource["status"] = "provisioning"  # the operation itself stays "running" forever
            return
        if op.kind == "vms":
            network = self.resources["networks"].get(resource["network_id"])
            ip = self._allocate_ip(network) if network else None
            if ip is None:
                resource["status"], op.status = "error", "failed"
                op.error = "network deleted" if network is None else "no free address in network"
                return
            resource["ip"] = ip
        resource["status"], op.status = READY_STATUS[op.kind], "done"

    def _allocate_ip(self, network: Json) -> str | None:
        net = ipaddress.ip_network(network["cidr"])
        offset = self.next_host.get(network["id"], 10)  # low addresses are "reserved", as in real clouds
        if offset >= net.num_addresses - 1:
            return None
        self.next_host[network["id"]] = offset + 1
        return str(net.network_address + offset)

    def record(self, now: float, method: str, path: str, status: int) -> None:
        """Log a request for /v1/_requests and /v1/_stats."""
        self.requests.append({"t": now, "method": method, "path": path, "status": status})
        self.by_status[str(status)] += 1
        self.by_method[method] += 1

    def stats(self) -> Json:
        """Return the /v1/_stats document."""
        self.advance(time.monotonic())
        return {
            "requests": {
                "total": len(self.requests),
                "by_status": dict(self.by_status),
                "by_method": dict(self.by_method),
            },
            "created": {kind: self.created[kind] for kind in KINDS},
            "deleted": {kind: self.deleted[kind] for kind in KINDS},
            "live": {kind: len(self.resources[kind]) for kind in KINDS},
            "idempotent_replays": self.replays,
            "lost_responses": self.lost,
        }


STATE_KEY = web.AppKey("sandbox_state", SandboxState)


def error_response(status: int, message: str) -> web.Response:
    """Answer `{"error": message}` with the given status."""
    return web.json_response({"error": message}, status=status)


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message)
    except web.HTTPException as exc:  # unknown route, wrong method: still JSON
        return error_response(exc.status, exc.reason)


def _shape(state: SandboxState, request: web.Request, now: float) -> web.Response | None:
    """Throttle, fault or replay a request; None means it goes on to its handler."""
    retry_after = state.throttle(now)
    if retry_after is not None:
        response = error_response(429, "rate limit exceeded")
        response.headers["Retry-After"] = str(retry_after)
        return response
    if state.fault_rng.random() < state.settings.fault_rate:
        return error_response(503, "injected fault")
    key = request.headers.get("Idempotency-Key")
    if key is None or request.method not in ("POST", "PATCH") or key not in state.idempotency:
        return None
    method, path, status, body = state.idempotency[key]
    if (method, path) != (request.method, request.path):
        return error_response(422, "Idempotency-Key was already used for a different request")
    state.replays += 1
    response = web.Response(body=body, status=status, content_type="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


@web.middleware
async def traffic_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply latency, rate limit, faults, idempotency and request logging to /v1 calls."""
    if request.path.startswith("/v1/_"):  # control endpoints are never shaped nor counted
        return await _guarded(request, handler)
    state = request.app[STATE_KEY]
    await asyncio.sleep(state.settings.latency)
    await request.read()  # read the body now so the handler runs without yielding
    now = time.monotonic()
    state.advance(now)
    response: web.StreamResponse | None = _shape(state, request, now)
    if response is None:
        response = await _guarded(request, handler)
        key = request.headers.get("Idempotency-Key")
        if key and request.method in ("POST", "PATCH") and 200 <= response.status < 300:
            body = response.body if isinstance(response, web.Response) else None
            if isinstance(body, bytes):  # every handler answers with a bytes JSON body
                state.idempotency[key] = (request.method, request.path, response.status, body)
        if request.method in ("POST", "PATCH") and 200 <= response.status < 300 and state.lost_rng.random() < state.settings.lost_rate:
            # The change is made, but the client never hears of it: the connection drops instead.
            state.lost += 1
            state.record(now, request.method, request.path, 0)
            if request.transport is not None:
                request.transport.close()
            return response
    state.record(now, request.method, request.path, response.status)
    return response


# --- routes -----------------------------------------------------------------------------------------

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


def _collection(kind: str) -> tuple[RouteHandler, RouteHandler, RouteHandler]:
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
    return web.json_response(state.settings.to_json())


def create_app(settings: SandboxSettings | None = None) -> web.Application:
    """Build the sandbox aiohttp application with fresh, empty state."""
    app = web.Application(middlewares=[traffic_middleware])
    app[STATE_KEY] = SandboxState(settings if settings is not None else SandboxSettings())
    router = app.router
    collections = (
        ("networks", "networks", create_network),
        ("vms", "vms", create_vm),
        ("load_balancers", "load_balancers", create_load_balancer),
        ("dns/records", "dns_records", create_dns_record),
    )
    for path, kind, create in collections:
        list_items, get_item, delete_item = _collection(kind)
        router.add_get(f"/v1/{path}", list_items)
        router.add_post(f"/v1/{path}", create)
        router.add_get(f"/v1/{path}/{{id}}", get_item)
        router.add_delete(f"/v1/{path}/{{id}}", delete_item)
    router.add_get("/v1/vms/{id}/health", vm_health)
    router.add_get("/v1/load_balancers/{id}/members", list_members)
    router.add_post("/v1/load_balancers/{id}/members", add_member)
    router.add_delete("/v1/load_balancers/{id}/members/{vm_id}", remove_member)
    router.add_get("/v1/operations", list_operations)
    router.add_get("/v1/operations/{id}", get_operation)
    router.add_get("/v1/_stats", get_stats)
    router.add_get("/v1/_requests", get_requests)
    router.add_post("/v1/_reset", post_reset)
    router.add_get("/v1/_settings", get_settings)
    router.add_patch("/v1/_settings", patch_settings)
    return app
