"""The sandbox's memory: settings, resources, operations and request statistics.

Kept apart from aiohttp middleware and handlers so that what the sandbox *knows* (and how
operations progress, ids are drawn and the rate window slides) can be read on its own; the
shaping middleware and the routes both work on this one object, stored under STATE_KEY.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import random
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from orchestrator.sandbox.capacity import Admission

if TYPE_CHECKING:
    from collections.abc import Container

Json = dict[str, Any]
KINDS = ("networks", "vms", "load_balancers", "dns_records", "lb_members")
READY_STATUS = {"networks": "ready", "vms": "running", "load_balancers": "ready"}


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
    #: Requests served at once; above it they queue (latency grows), and past twice it get 429.
    capacity: int | None = None
    operation_delay: float = 0.3
    never_ready: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        _number(self.latency, "latency", 0.0)
        _number(self.fault_rate, "fault_rate", 0.0, 1.0)
        _number(self.lost_rate, "lost_rate", 0.0, 1.0)
        if self.rate_limit is not None:
            _number(self.rate_limit, "rate_limit", 1e-9)
        if self.capacity is not None and (isinstance(self.capacity, bool) or not isinstance(self.capacity, int) or self.capacity < 1):
            raise ValueError(f"capacity must be a positive integer or null, got {self.capacity!r}")
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
        #: Requests in service and queued (see capacity.py); kept across resets, as they are in flight.
        self.admission = Admission()
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
        self.admission.peak = self.admission.in_flight

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

    def record(self, now: float, method: str, path: str, status: int, in_flight: int = 0) -> None:
        """Log a request for /v1/_requests and /v1/_stats; `in_flight` is how many requests were in
        the sandbox (served or queued) when it arrived, itself included."""
        self.requests.append({"t": now, "method": method, "path": path, "status": status, "in_flight": in_flight})
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
            "in_flight": self.admission.in_flight,
            "peak_in_flight": self.admission.peak,
        }


STATE_KEY = web.AppKey("sandbox_state", SandboxState)
