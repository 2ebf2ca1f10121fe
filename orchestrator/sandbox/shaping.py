"""Traffic shaping: the middleware that makes the sandbox slow, flaky and rate-limited.

Every /v1 call passes through here before its handler: capacity (a queue, then 429; see
capacity.py), latency, rate limiting (429), injected faults (503), idempotency-key replays, lost
responses and request logging. It also turns
ApiError into JSON answers, so handlers can simply raise. Kept apart from the routes so the
handlers stay plain CRUD and the misbehaviour lives in one place.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from aiohttp import web

from orchestrator.sandbox.state import STATE_KEY, SandboxState

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler


class ApiError(Exception):
    """An error answered to the client as `{"error": message}` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
    """Apply capacity, latency, rate limit, faults, idempotency and request logging to /v1 calls."""
    if request.path.startswith("/v1/_"):  # control endpoints are never shaped nor counted
        return await _guarded(request, handler)
    state = request.app[STATE_KEY]
    settings, admission = state.settings, state.admission
    in_flight = admission.in_flight + 1
    refused = admission.refusal(settings.capacity, settings.latency)
    if refused is not None:  # the queue is full: answered at once, not served
        response = error_response(429, "over capacity")
        response.headers["Retry-After"] = f"{refused:g}"
        state.record(time.monotonic(), request.method, request.path, 429, in_flight)
        return response
    await admission.enter(settings.capacity)
    try:
        return await _served(state, request, handler, in_flight)
    finally:
        admission.leave(state.settings.capacity)  # the capacity now, which may have changed meanwhile


async def _served(state: SandboxState, request: web.Request, handler: Handler, in_flight: int) -> web.StreamResponse:
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
            state.record(now, request.method, request.path, 0, in_flight)
            if request.transport is not None:
                request.transport.close()
            return response
    state.record(now, request.method, request.path, response.status, in_flight)
    return response
