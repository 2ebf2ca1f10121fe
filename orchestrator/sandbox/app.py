"""The sandbox cloud API application: wires state, the shaping middleware and the routes together.

The pieces live in state.py (what the sandbox remembers), shaping.py (latency, faults, rate
limits, idempotency, lost responses) and routes.py (the /v1 handlers); this module only builds
the aiohttp application from them. STATE_KEY and SandboxSettings are re-exported because
callers have always imported them from here.
"""

from __future__ import annotations

from aiohttp import web

from orchestrator.sandbox.routes import (
    add_member,
    collection,
    create_dns_record,
    create_load_balancer,
    create_network,
    create_vm,
    get_operation,
    get_requests,
    get_settings,
    get_stats,
    list_members,
    list_operations,
    patch_settings,
    post_reset,
    remove_member,
    vm_health,
)
from orchestrator.sandbox.shaping import traffic_middleware
from orchestrator.sandbox.state import STATE_KEY, SandboxSettings, SandboxState

__all__ = ["STATE_KEY", "SandboxSettings", "create_app"]


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
        list_items, get_item, delete_item = collection(kind)
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
