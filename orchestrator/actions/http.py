"""`http` (one request) and `wait_until` (a request repeated until a condition holds).

Both send through the run's pooled client (`http_client.client_for`). A status the step expects is
the output; a status in the step's `retry_on_status` is a retryable failure carrying the server's
Retry-After; any other status fails the step at once. POST and PATCH carry an Idempotency-Key that
is the same for every attempt of one item, so a retried create is safe. Errors name the step, the
method and the URL with its credentials redacted. Every request adds the credentials it carries
(`redact.remember_request`) to the run's secrets, and errors are masked with them, a server's body
before it is shortened (so no part of a secret survives the cut).

Per-request work is kept to plain dict and tuple handling: parameters were validated by pydantic
when the playbook loaded; what templates produce at run time is checked by hand, here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

from orchestrator.actions.base import Action, PlanContext, Problem, StepContext
from orchestrator.actions.http_client import ClientFailure, client_for, retry_after
from orchestrator.actions.redact import redact_url, remember_request, request_secrets, scrub, secrets_in
from orchestrator.errors import ActionError
from orchestrator.executors.base import Invocation
from orchestrator.model.values import parse_duration
from orchestrator.templates import Deferred, is_template

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_KNOWN_METHODS = frozenset(METHODS)
DEFAULT_RETRY_ON_STATUS = (429, 502, 503, 504)
_IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c5a2e-8d4b-5e7f-9a3c-0b1d2e3f4a5b")
_JSON_TYPE = "application/json"
_FORM_TYPE = "application/x-www-form-urlencoded"
# --- the request: rendered parameters checked by hand, then sent -------------------------------------


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _headers(value: Any, step: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ActionError(f"step {step!r}: headers: expected a mapping, got {type(value).__name__}", retryable=False)
    return {str(k): _text(v) for k, v in value.items() if v is not None}


def _query(value: Any, step: str) -> list[tuple[str, str]]:
    if not isinstance(value, Mapping):
        raise ActionError(f"step {step!r}: params: expected a mapping, got {type(value).__name__}", retryable=False)
    return [
        (str(k), _text(one))
        for k, v in value.items()
        for one in (v if isinstance(v, list | tuple) else (v,))
        if one is not None
    ]


def _seconds(value: Any, what: str, step: str) -> float:
    try:
        return value if type(value) is float else parse_duration(value)
    except ValueError as exc:
        raise ActionError(f"step {step!r}: {what}: {exc}", retryable=False) from None


def _expected(status: int, expect: Any, step: str) -> bool:
    if expect is None:
        return 200 <= status < 300
    if type(expect) is int:
        return status == expect
    if isinstance(expect, list | tuple):
        return any(status == _code(e, step) for e in expect)
    return status == _code(expect, step)


def _code(value: Any, step: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ActionError(f"step {step!r}: expect: expected a status code or a list of them, got {value!r}", retryable=False)


def _expect_label(expect: Any) -> str:
    if expect is None:
        return "2xx"
    return ", ".join(map(str, expect)) if isinstance(expect, list | tuple) else str(expect)


def idempotency_key(run_id: str, step_id: str, index: int | None, generation: int = 0) -> str:
    """The Idempotency-Key of one item of one step in one run: the same across its attempts, and
    across resumes of the run, until a `rollback` undid its work (a new `generation`)."""
    run = run_id if generation == 0 else f"{run_id}\x00{generation}"
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{run}\x00{step_id}\x00{index}"))


class Request:
    """A request built from rendered parameters, reused for every poll of a `wait_until`."""

    __slots__ = ("content", "headers", "method", "query", "secrets", "step", "timeout", "url")

    #: `timeout` in the parameters bounds the request (for `wait_until` it bounds the whole wait).
    request_timeout: ClassVar[bool] = True
    #: POST and PATCH carry an Idempotency-Key, the same for every attempt of one item.
    idempotent: ClassVar[bool] = True

    def __init__(self, p: Mapping[str, Any], ctx: StepContext) -> None:
        step = self.step = ctx.step_id
        secrets = self.secrets = ctx.env.secrets
        method = p.get("method", "GET")
        if type(method) is not str or method not in _KNOWN_METHODS:  # lower case, or templated: checked now
            if not isinstance(method, str) or method.upper() not in _KNOWN_METHODS:
                raise ActionError(f"step {step!r}: unknown HTTP method {method!r}; use one of {', '.join(METHODS)}", retryable=False)
            method = method.upper()
        self.method = method
        url = p.get("url")
        if not isinstance(url, str):
            raise ActionError(f"step {step!r}: url must be a string, got {url!r}", retryable=False)
        self.url = url
        self.headers: dict[str, str] | None = None
        self.query: list[tuple[str, str]] | None = None
        self.content: bytes | None = None
        self.timeout: float | None = None
        if len(p) > 1 or "url" not in p:  # anything besides the URL (most GETs have nothing else)
            self._options(p, ctx)
        if self.headers or self.query or "@" in url:  # a plain URL carries no credential
            remember_request(secrets, url, self.headers, self.query)

    def _options(self, p: Mapping[str, Any], ctx: StepContext) -> None:
        step, method, idempotent = self.step, self.method, self.idempotent
        h = p.get("headers")
        headers = _headers(h, step) if h is not None else None
        q = p.get("params")
        self.query = _query(q, step) if q is not None else None
        content_type = None
        if "json" in p:
            try:
                self.content = json.dumps(p["json"], separators=(",", ":")).encode()
            except (TypeError, ValueError) as exc:
                raise ActionError(f"step {step!r}: json: cannot encode the body as JSON: {exc}", retryable=False) from None
            content_type = _JSON_TYPE
        elif (d := p.get("data")) is not None:
            if isinstance(d, Mapping):
                self.content, content_type = urlencode(_query(d, step)).encode(), _FORM_TYPE
            else:
                self.content, content_type = _text(d).encode(), "text/plain; charset=utf-8"
        if content_type is not None or (idempotent and method in ("POST", "PATCH")):
            headers = headers or {}
            present = {k.lower() for k in headers}
            if content_type is not None and "content-type" not in present:
                headers["Content-Type"] = content_type
            if idempotent and method in ("POST", "PATCH") and "idempotency-key" not in present:
                headers["Idempotency-Key"] = idempotency_key(ctx.run_id, step, ctx.index, ctx.env.generation)
        self.headers = headers
        t = p.get("timeout") if self.request_timeout else None
        self.timeout = _seconds(t, "timeout", step) if t is not None else None

    def describe(self, what: str, *, step: bool = True) -> str:
        """`what` happened to this request: a message naming step, method and redacted URL."""
        url = self.url
        if self.query:
            url += ("&" if urlsplit(url).query else "?") + urlencode(self.query)
        prefix = f"step {self.step!r}: " if step else ""
        return self.secrets.mask(scrub(f"{prefix}{self.method} {redact_url(url)} {what}", secrets_in(url, self.headers)))

    def status_error(self, response: dict[str, Any], expect: Any, retryable: bool) -> ActionError:
        status = response["status"]
        mask = self.secrets.mask
        # Masked whole before it is cut, and again once its whitespace is folded.
        snippet = mask(" ".join(mask(response["text"])[:1000].split()))[:200]
        message = self.describe(f"answered {status}, expected {_expect_label(expect)}" + (f": {snippet}" if snippet else ""))
        wait = retry_after(response["headers"].get("retry-after")) if retryable else None
        return ActionError(message, retryable=retryable, retry_after=wait)


class Poll(Request):
    """A `wait_until` request: no Idempotency-Key, since every poll must really run (not replay the
    first answer), and its `timeout` is the whole wait's."""

    __slots__ = ()
    request_timeout = False
    idempotent = False


def _check_request(name: str, p: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    method = p.get("method", "GET")
    if isinstance(method, str) and not is_template(method) and method.upper() not in METHODS:
        problems.append(Problem((name, "method"), f"unknown HTTP method {method!r}; use one of {', '.join(METHODS)}"))
    url = p.get("url")
    if isinstance(url, str) and not is_template(url):
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme not in ("http", "https") or not host:
            problems.append(Problem((name, "url"), f"expected an absolute http(s) URL such as https://api.example.com/v1/items, got {redact_url(url)!r}"))
    expect = p.get("expect")
    codes = [expect] if isinstance(expect, int) else expect if isinstance(expect, list) else []
    if isinstance(expect, str) and not is_template(expect):
        codes = [int(expect)] if expect.strip().isdigit() else [expect]
    for i, code in enumerate(codes):
        if not isinstance(code, int) or not 100 <= code <= 599:
            path = (name, "expect", i) if isinstance(expect, list) else (name, "expect")
            problems.append(Problem(path, f"expected an HTTP status code from 100 to 599, got {code!r}"))
    if "json" in p and "data" in p:
        problems.append(Problem((name, "data"), "give the body as `json` or as `data`, not both"))
    return problems


def _request_secrets(p: Any) -> list[str]:
    if not isinstance(p, Mapping) or not isinstance(url := p.get("url"), str):
        return []
    query = p.get("params")
    pairs = [(str(k), v) for k, v in query.items()] if isinstance(query, Mapping) else None
    headers = p.get("headers")
    return request_secrets(url, headers if isinstance(headers, Mapping) else None, pairs)


# --- the actions --------------------------------------------------------------------------------------


class Http(Action):
    """Send one HTTP request; output is {status, headers, json, text}."""

    name = "http"
    params_type: ClassVar[Any] = "orchestrator.actions.params:HttpParams"

    def check(self, params: Any, ctx: PlanContext) -> Sequence[Problem]:
        return _check_request(self.name, params)

    def is_read_only(self, params: Any) -> bool:
        method = params.get("method", "GET")
        return isinstance(method, str) and method.upper() in READ_ONLY_METHODS

    def secrets(self, params: Any) -> list[str]:
        return _request_secrets(params)

    def invocation(self, params: Any, with_: Mapping[str, Any] | None, ctx: StepContext) -> Invocation:
        return Invocation(_http, (params, ctx))


async def _http(p: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
    request = Request(p, ctx)
    try:
        response = await client_for(ctx).send(
            request.method, request.url, request.headers, request.query, request.content, request.timeout
        )
    except ClientFailure as exc:
        raise ActionError(request.describe(str(exc)), retryable=exc.retryable) from None
    expect = p.get("expect")
    status = response["status"]
    if (200 <= status < 300 if expect is None else _expected(status, expect, ctx.step_id)):
        return response
    raise request.status_error(response, expect, status in ctx.retry_on_status)


class WaitUntil(Action):
    """Repeat an HTTP request every `interval` until `until` holds; output is the last response."""

    name = "wait_until"
    params_type: ClassVar[Any] = "orchestrator.actions.params:WaitUntilParams"
    deferred: ClassVar[frozenset[str]] = frozenset({"until"})
    deferred_names: ClassVar[frozenset[str]] = frozenset({"response"})

    def check(self, params: Any, ctx: PlanContext) -> Sequence[Problem]:
        problems = _check_request(self.name, params)
        interval = params.get("interval")
        if isinstance(interval, float) and interval <= 0:
            problems.append(Problem((self.name, "interval"), "expected a wait longer than zero, such as 500ms or 2s"))
        return problems

    def is_read_only(self, params: Any) -> bool:
        method = params.get("method", "GET")
        return isinstance(method, str) and method.upper() == "GET"

    def secrets(self, params: Any) -> list[str]:
        return _request_secrets(params)

    def invocation(self, params: Any, with_: Mapping[str, Any] | None, ctx: StepContext) -> Invocation:
        return Invocation(_wait_until, (params, ctx))


async def _wait_until(p: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
    request = Poll(p, ctx)
    step = ctx.step_id
    until = p.get("until")
    interval = _seconds(p.get("interval", 1.0), "interval", step)
    limit = _seconds(p.get("timeout", 60.0), "timeout", step)
    expect = p.get("expect")
    transient = ctx.retry_on_status
    # Injectable time, so tests of long waits do not wait.
    sleep, clock = ctx.env.sleep, ctx.env.clock
    try:
        client = client_for(ctx)
    except ClientFailure as exc:
        raise ActionError(request.describe(str(exc)), retryable=False) from None
    deadline = clock() + limit
    last = "no response"
    while True:
        gap = interval
        try:
            response = await client.send(
                request.method, request.url, request.headers, request.query, request.content, max(deadline - clock(), 1.0)
            )
        except ClientFailure as exc:
            if not exc.retryable:
                raise ActionError(request.describe(str(exc)), retryable=False) from None
            last = "last error: " + request.describe(str(exc), step=False)
        else:
            status = response["status"]
            last = f"last status {status}"
            if _expected(status, expect, step):
                if until(response=response) if isinstance(until, Deferred) else until:
                    return response
            elif status >= 500 or status == 429 or status in transient:
                gap = max(gap, retry_after(response["headers"].get("retry-after")) or 0.0)
            else:
                raise request.status_error(response, expect, False)
        remaining = deadline - clock()
        if remaining <= 0 or gap > max(remaining, interval):  # out of time, or asked to wait past the end
            source = until.template.source if isinstance(until, Deferred) else repr(until)
            raise ActionError(f"step {step!r}: condition not met after {limit:g}s: {source}; {last}", retryable=False)
        await sleep(min(gap, remaining))
