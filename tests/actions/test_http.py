"""Specification of the `http` action: real requests to real servers on 127.0.0.1, whole playbooks
run through `orchestrator.arun`."""

from __future__ import annotations

import asyncio
import email.utils
import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import orchestrator
from orchestrator.actions.http import Http, idempotency_key
from orchestrator.actions.http_client import AiohttpClient, retry_after
from orchestrator.actions.proxies import bypasses_proxy
from orchestrator.actions.redact import redact_headers, redact_url, scrub, secrets_in
from orchestrator.config import Config, HttpSettings
from orchestrator.sandbox import SandboxSettings, start_sandbox
from tests.actions import Clock, Server, one_step, run

Write = Callable[..., Path]


async def test_get_returns_status_headers_json_and_text(server: Server, write_playbook: Write) -> None:
    """A GET outputs {status, headers (lowercase names), json, text}."""
    server.script("/thing", (200, {"name": "web", "n": 3}, {"X-Request-Id": "r-1"}))
    path = write_playbook(one_step('  - id: get\n    http: {url: "{{ api }}/thing"}\n'))
    result = await run(path, vars={"api": server.url})
    assert result.status == "succeeded"
    out = result.step("get").output
    assert out["status"] == 200
    assert out["headers"]["x-request-id"] == "r-1"
    assert out["headers"]["content-type"].startswith("application/json")
    assert out["json"] == {"name": "web", "n": 3}
    assert out["text"] == '{"name": "web", "n": 3}'
    assert [(s.method, s.path) for s in server.seen] == [("GET", "/thing")]


async def test_json_is_none_when_the_body_is_not_json(server: Server, write_playbook: Write) -> None:
    """A text body is in `text`; `json` is None (and a JSON-looking body without a JSON type is parsed)."""
    server.script("/plain", (200, "hello", {"Content-Type": "text/plain"}))
    server.script("/untyped", (200, '{"ok": true}', {"Content-Type": "text/plain"}))
    path = write_playbook(one_step(
        '  - id: plain\n    http: {url: "{{ api }}/plain"}\n'
        '  - id: untyped\n    http: {url: "{{ api }}/untyped"}\n'
    ))
    result = await run(path, vars={"api": server.url})
    assert result.step("plain").output["json"] is None and result.step("plain").output["text"] == "hello"
    assert result.step("untyped").output["json"] == {"ok": True}


async def test_request_carries_method_headers_params_and_body(server: Server, write_playbook: Write) -> None:
    """Headers and query values are sent as text (lists repeat the parameter); `json` and `data` set the body."""
    server.script("/items", (201, {"id": "i-1"}, {}))
    server.script("/form", (200, {}, {}))
    path = write_playbook(one_step(
        "  - id: create\n"
        '    http: {method: post, url: "{{ api }}/items?x=1", headers: {X-Count: 3}, params: {tag: [a, b], flag: true},'
        " json: {name: web, tags: [1, 2]}, expect: [200, 201]}\n"
        "  - id: form\n"
        '    http: {method: PUT, url: "{{ api }}/form", data: {a: "1 2", b: x}}\n'
    ))
    result = await run(path, vars={"api": server.url})
    assert result.status == "succeeded", [s.error for s in result.steps]
    create, form = server.to("/items")[0], server.to("/form")[0]
    assert create.method == "POST"
    assert create.query == {"x": ["1"], "tag": ["a", "b"], "flag": ["true"]}
    assert create.headers["X-Count"] == "3"
    assert create.headers["Content-Type"] == "application/json"
    assert create.body == b'{"name":"web","tags":[1,2]}'
    assert form.method == "PUT" and form.body == b"a=1+2&b=x"
    assert form.headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_unexpected_status_fails_at_once_with_redacted_url(server: Server, write_playbook: Write) -> None:
    """A status neither expected nor retryable fails on the first attempt, naming step, method and URL,
    with userinfo, credential-like parameters and echoed secrets masked."""
    server.script("/missing", (404, {"error": "no such thing for key tok-9f8e7d"}, {}))
    path = write_playbook(one_step(
        "  - id: get\n"
        "    retry: {attempts: 3, delay: 0}\n"
        '    http: {url: "http://admin:s3cr3tpw@{{ api }}/missing?page=2&api_key=k-12345", headers: {X-Api-Key: tok-9f8e7d}}\n'
    ))
    result = await run(path, vars={"api": server.url.removeprefix("http://")})
    step = result.step("get")
    assert step.status == "failed" and step.attempts == 1
    assert step.error is not None
    assert "step 'get': GET http://***@127.0.0.1:" in step.error
    assert "/missing?page=2&api_key=*** answered 404, expected 2xx" in step.error
    for secret in ("admin", "s3cr3tpw", "k-12345", "tok-9f8e7d"):
        assert secret not in step.error
    assert len(server.seen) == 1


async def test_expect_accepts_the_listed_statuses_only(server: Server, write_playbook: Write) -> None:
    """`expect` replaces the default 2xx: a listed 404 succeeds, an unlisted 200 fails."""
    server.script("/gone", (404, {"error": "gone"}, {}))
    server.script("/here", (200, {}, {}))
    path = write_playbook(one_step(
        '  - id: gone\n    http: {method: DELETE, url: "{{ api }}/gone", expect: [204, 404]}\n'
        '  - id: here\n    on_error: continue\n    http: {url: "{{ api }}/here", expect: 201}\n'
    ))
    result = await run(path, vars={"api": server.url})
    assert result.step("gone").status == "succeeded" and result.step("gone").output["status"] == 404
    assert result.step("here").status == "failed" and "answered 200, expected 201" in str(result.step("here").error)


async def test_retryable_status_is_retried(server: Server, write_playbook: Write) -> None:
    """A 503 is retried under the step's retry policy; the next 200 is the output."""
    server.script("/flaky", (503, {"error": "busy"}, {}), (200, {"ok": True}, {}))
    path = write_playbook(one_step('  - id: get\n    retry: {attempts: 3, delay: 0}\n    http: {url: "{{ api }}/flaky"}\n'))
    result = await run(path, vars={"api": server.url})
    step = result.step("get")
    assert step.status == "succeeded" and step.attempts == 2
    assert step.output["json"] == {"ok": True}
    assert len(server.seen) == 2


async def test_the_steps_own_retry_on_status_decides_what_is_retried(server: Server, write_playbook: Write) -> None:
    """`retry_on_status: [500]` retries a 500 and fails a 503 at once: the list replaces the default."""
    server.script("/500", (500, {"error": "oops"}, {}), (200, {"ok": True}, {}))
    server.script("/503", (503, {"error": "busy"}, {}), (200, {"ok": True}, {}))
    retry = "retry: {attempts: 3, delay: 0, retry_on_status: [500]}"
    path = write_playbook(one_step(
        f'  - id: five-hundred\n    {retry}\n    http: {{url: "{{{{ api }}}}/500"}}\n'
        f'  - id: unavailable\n    on_error: continue\n    {retry}\n    http: {{url: "{{{{ api }}}}/503"}}\n'
    ))
    result = await run(path, vars={"api": server.url})
    assert result.step("five-hundred").status == "succeeded" and result.step("five-hundred").attempts == 2
    unavailable = result.step("unavailable")
    assert unavailable.status == "failed" and unavailable.attempts == 1
    assert "answered 503" in str(unavailable.error)
    assert len(server.to("/503")) == 1


async def test_retry_waits_at_least_retry_after_seconds(server: Server, write_playbook: Write) -> None:
    """A 429 with `Retry-After: 2` makes the retry wait at least 2 s, whatever the policy's delay."""
    server.script("/limited", (429, {"error": "slow down"}, {"Retry-After": "2"}), (200, {}, {}))
    path = write_playbook(one_step('  - id: get\n    retry: {attempts: 3, delay: 0}\n    http: {url: "{{ api }}/limited"}\n'))
    clock = Clock()
    result = await run(path, vars={"api": server.url}, sleep=clock.sleep)
    assert result.step("get").status == "succeeded"
    assert len(clock.waits) == 1 and clock.waits[0] >= 2.0


async def test_retry_after_http_date_is_honoured(server: Server, write_playbook: Write) -> None:
    """Retry-After may be an HTTP date; the wait is the time until then."""
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    server.script("/limited", (503, {}, {"Retry-After": when}), (200, {}, {}))
    path = write_playbook(one_step('  - id: get\n    retry: {attempts: 2, delay: 0}\n    http: {url: "{{ api }}/limited"}\n'))
    clock = Clock()
    result = await run(path, vars={"api": server.url}, sleep=clock.sleep)
    assert result.step("get").status == "succeeded"
    assert 115 <= clock.waits[0] <= 121


async def test_retry_after_holds_in_real_time(server: Server, write_playbook: Write) -> None:
    """With real time, the server sees the retry at least Retry-After (1 s) after the throttled request."""
    server.script("/limited", (429, {}, {"Retry-After": "1"}), (200, {}, {}))
    path = write_playbook(one_step('  - id: get\n    retry: {attempts: 2, delay: 0}\n    http: {url: "{{ api }}/limited"}\n'))
    result = await run(path, vars={"api": server.url})
    assert result.step("get").status == "succeeded"
    first, second = server.seen
    assert second.at - first.at >= 1.0


def test_retry_after_parsing() -> None:
    """Retry-After: seconds (integer or decimal), an HTTP date (relative to now), or nothing usable."""
    now = 1_700_000_000.0
    assert retry_after("2") == 2.0
    assert retry_after(" 1.5 ") == 1.5
    assert retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert retry_after("soon") is None
    assert retry_after(None) is None


async def test_retried_post_sends_the_same_idempotency_key(server: Server, write_playbook: Write) -> None:
    """Every attempt of one POST carries the same Idempotency-Key, so the server can deduplicate."""
    server.script("/v1/things", (503, {}, {}), (201, {"id": "t-1"}, {}))
    path = write_playbook(one_step(
        '  - id: create\n    retry: {attempts: 3, delay: 0}\n    http: {method: POST, url: "{{ api }}/v1/things", json: {name: a}}\n'
    ))
    result = await run(path, vars={"api": server.url})
    assert result.step("create").status == "succeeded"
    keys = [s.headers.get("Idempotency-Key") for s in server.seen]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]


async def test_idempotency_keys_differ_by_item_and_by_run(server: Server, write_playbook: Write) -> None:
    """Items of a `for_each` get distinct keys, another run gets new ones, and a key the user sets is kept."""
    server.script("/v1/things", (201, {}, {}))
    server.script("/v1/mine", (201, {}, {}))
    path = write_playbook(one_step(
        '  - id: create\n    for_each: "{{ range(3) }}"\n'
        '    http: {method: PATCH, url: "{{ api }}/v1/things", json: {n: "{{ item }}"}}\n'
        '  - id: mine\n    http: {method: POST, url: "{{ api }}/v1/mine", headers: {idempotency-key: my-key}}\n'
    ))
    await run(path, vars={"api": server.url})
    await run(path, vars={"api": server.url})
    first, second = ([s.headers["Idempotency-Key"] for s in server.to("/v1/things")[i : i + 3]] for i in (0, 3))
    assert len(set(first)) == 3 and len(set(second)) == 3 and not set(first) & set(second)
    assert [s.headers["Idempotency-Key"] for s in server.to("/v1/mine")] == ["my-key", "my-key"]
    assert idempotency_key("run", "step", 1) == idempotency_key("run", "step", 1) != idempotency_key("run", "step", 2)


async def test_creates_under_faults_happen_exactly_once(write_playbook: Write) -> None:
    """Against the sandbox failing half its calls, every create succeeds through retries, each resource
    created once (the same Idempotency-Key on every attempt is shown against a recording server above)."""
    async with start_sandbox(SandboxSettings(fault_rate=0.5, seed=7)) as sandbox:
        path = write_playbook(one_step(
            '  - id: records\n    for_each: "{{ range(20) }}"\n    concurrency: 5\n'
            "    retry: {attempts: 30, delay: 0}\n"
            '    http: {method: POST, url: "{{ api }}/v1/dns/records", json: {name: "host-{{ item }}", value: "10.0.0.{{ item }}"}, expect: 201}\n'
        ))
        result = await run(path, vars={"api": sandbox.url})
        stats = await sandbox.stats()
    assert result.status == "succeeded" and result.step("records").retries > 0
    assert stats["requests"]["by_status"]["503"] > 0
    assert stats["created"]["dns_records"] == 20 and stats["live"]["dns_records"] == 20


async def test_connection_refused_is_retryable(write_playbook: Write) -> None:
    """No server listening: each attempt fails with a retryable error naming the request."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = write_playbook(one_step(f'  - id: get\n    retry: {{attempts: 2, delay: 0}}\n    http: {{url: "http://127.0.0.1:{port}/x?token=zz-top"}}\n'))
    result = await run(path)
    step = result.step("get")
    assert step.status == "failed" and step.attempts == 2
    assert f"step 'get': GET http://127.0.0.1:{port}/x?token=*** " in str(step.error)
    assert "zz-top" not in str(step.error)


async def test_client_timeout_is_retryable(server: Server, write_playbook: Write) -> None:
    """A request that outlasts its `timeout` fails retryably; the next attempt may succeed."""

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    server.script("/slow", slow, (200, {"fast": True}, {}))
    path = write_playbook(one_step('  - id: get\n    retry: {attempts: 2, delay: 0}\n    http: {url: "{{ api }}/slow", timeout: 500ms}\n'))
    result = await run(path, vars={"api": server.url})
    step = result.step("get")
    assert step.status == "succeeded" and step.attempts == 2 and step.output["json"] == {"fast": True}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_max_body_bytes_fails_without_retry(server: Server, write_playbook: Write, chunked: bool) -> None:
    """A body larger than config http.max_body_bytes fails the step at once, announced or streamed."""

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = 4096
        await response.prepare(request)
        for _ in range(4):
            await response.write(b"x" * 1024)
        await response.write_eof()
        return response

    server.script("/big", big)
    path = write_playbook(one_step('  - id: get\n    retry: {attempts: 3, delay: 0}\n    http: {url: "{{ api }}/big"}\n'))
    result = await run(path, vars={"api": server.url}, config=Config(http={"max_body_bytes": 1000}))
    step = result.step("get")
    assert step.status == "failed" and step.attempts == 1
    assert "larger than max_body_bytes (1000 bytes)" in str(step.error)


async def test_requests_of_a_run_share_pooled_connections(server: Server, write_playbook: Write) -> None:
    """One session per run: sequential requests reuse one kept-alive connection."""
    server.script("/item", (200, {}, {}))
    path = write_playbook(one_step('  - id: get\n    for_each: "{{ range(10) }}"\n    concurrency: 1\n    http: {url: "{{ api }}/item"}\n'))
    result = await run(path, vars={"api": server.url})
    assert result.status == "succeeded"
    assert len({s.peer for s in server.seen}) == 1 and len(server.seen) == 10


@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
async def test_every_way_a_response_ends_leaves_the_pool_usable(server: Server, write_playbook: Write, client: str) -> None:
    """Bodies read to the end (announced, chunked, none for HEAD, an unexpected status) give their
    connection back for the next request; a body refused as too large closes it, and the request
    after it still succeeds."""

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'{"part": 1}')
        await response.write_eof()
        return response

    server.script("/json", (200, {"a": 1}, {}))
    server.script("/chunked", chunked)
    server.script("/missing", (404, {"error": "no such thing"}, {}))
    server.script("/big", (200, "x" * 1_000_000, {}))  # more than a socket buffer: left unread
    steps = [
        ("json", "GET", "/json", ""),
        ("chunked", "GET", "/chunked", "    needs: [json]\n"),
        ("head", "HEAD", "/json", "    needs: [chunked]\n"),
        ("missing", "GET", "/missing", "    needs: [head]\n    on_error: continue\n"),
        ("after_missing", "GET", "/json", "    needs: [missing]\n"),
        ("big", "GET", "/big", "    needs: [after_missing]\n    on_error: continue\n"),
        ("after_big", "GET", "/json", "    needs: [big]\n"),
    ]
    text = "".join(
        f'  - id: {sid}\n{extra}    for_each: "{{{{ range(3) }}}}"\n    concurrency: 1\n'
        f'    http: {{method: {method}, url: "{{{{ api }}}}{path}"}}\n'
        for sid, method, path, extra in steps
    )
    config = Config(http={"client": client, "max_body_bytes": 1000})
    result = await run(write_playbook(one_step(text)), vars={"api": server.url}, config=config)
    assert [result.step(sid).status for sid, *_ in steps] == [
        "succeeded", "succeeded", "succeeded", "failed", "succeeded", "failed", "succeeded",
    ]
    assert result.step("chunked").output[0]["json"] == {"part": 1}
    assert result.step("head").output[0]["text"] == ""
    peers = [s.peer for s in server.seen]
    assert len(set(peers[:15])) == 1, "every request before the large body reused one connection"
    assert server.seen[15].path == "/big" and peers[15] == peers[0]
    assert peers[-1] != peers[0], "the large body's connection was closed, its unread rest not taken for the next answer"


@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
async def test_client_is_chosen_by_configuration(server: Server, write_playbook: Write, client: str) -> None:
    """config http.client picks aiohttp (default) or httpx; both give the same output and retries."""
    server.script("/v1/things", (502, {}, {}), (201, {"id": "t-1"}, {"X-Thing": "t-1"}))
    path = write_playbook(one_step(
        '  - id: create\n    retry: {attempts: 2, delay: 0}\n    http: {method: POST, url: "{{ api }}/v1/things", json: {a: 1}, params: {q: x}}\n'
    ))
    result = await run(path, vars={"api": server.url}, config=Config(http={"client": client}))
    step = result.step("create")
    assert step.status == "succeeded" and step.attempts == 2
    assert step.output == {"status": 201, "headers": step.output["headers"], "json": {"id": "t-1"}, "text": '{"id": "t-1"}'}
    assert step.output["headers"]["x-thing"] == "t-1"
    agents = {s.headers["User-Agent"].split("/")[0] for s in server.seen}
    assert agents == ({"python-httpx"} if client == "httpx" else {"Python"})
    assert server.seen[0].query == {"q": ["x"]} and server.seen[0].body == b'{"a":1}'
    assert server.seen[0].headers["Idempotency-Key"] == server.seen[1].headers["Idempotency-Key"]


@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
async def test_requests_go_through_the_proxy_the_environment_names(
    server: Server, write_playbook: Write, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY (credentials included) routes requests to other hosts through the proxy, here a
    loopback server standing in for one: the request for api.example.test reaches it, and nothing
    is looked up or sent anywhere else. Loopback targets are never proxied."""
    proxy = server.url.replace("http://", "http://ops:s3cret@")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("http_proxy", proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    server.script("/v1/ping", (200, {"via": "proxy"}, {}))
    server.script("/local", (200, {"via": "direct"}, {}))
    path = write_playbook(one_step(
        '  - id: remote\n    http: {url: "http://api.example.test/v1/ping"}\n'
        '  - id: local\n    http: {url: "{{ api }}/local"}\n'
    ))
    result = await run(path, vars={"api": server.url}, config=Config(http={"client": client}))
    assert result.step("remote").output["json"] == {"via": "proxy"}, result.step("remote").error
    assert result.step("local").output["json"] == {"via": "direct"}
    remote, local = server.to("/v1/ping"), server.to("/local")
    assert remote[0].headers["Host"] == "api.example.test"
    assert remote[0].headers["Proxy-Authorization"] == "Basic b3BzOnMzY3JldA=="  # ops:s3cret
    assert "Proxy-Authorization" not in local[0].headers


def test_what_is_never_proxied(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback addresses, and the hosts NO_PROXY lists (a domain covers its subdomains)."""
    monkeypatch.setenv("no_proxy", "internal.example,10.1.2.3")
    monkeypatch.setenv("NO_PROXY", "internal.example,10.1.2.3")
    for host in ("127.0.0.1", "127.0.0.9", "::1", "localhost", "api.localhost", "internal.example", "vm.internal.example", "10.1.2.3"):
        assert bypasses_proxy(host), host
    for host in ("api.example.test", "10.1.2.4", "example"):
        assert not bypasses_proxy(host), host


async def test_trust_env_false_ignores_the_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    trusting, ignoring = AiohttpClient(HttpSettings()), AiohttpClient(HttpSettings(trust_env=False))
    try:
        assert trusting._proxies is not None and trusting._proxies.route("http://api.example.test/x") is not None
        assert ignoring._proxies is None
    finally:
        await trusting.aclose()
        await ignoring.aclose()


async def test_http2_without_h2_is_a_clear_error(server: Server, write_playbook: Write) -> None:
    """Asking httpx for HTTP/2 without the h2 package fails the step once, saying what to install."""
    server.script("/x", (200, {}, {}))
    path = write_playbook(one_step('  - id: get\n    retry: {attempts: 3, delay: 0}\n    http: {url: "{{ api }}/x"}\n'))
    result = await run(path, vars={"api": server.url}, config=Config(http={"client": "httpx", "http2": True}))
    step = result.step("get")
    if importlib.util.find_spec("h2") is None:
        assert step.status == "failed" and step.attempts == 1 and "pip install 'httpx[http2]'" in str(step.error)
    else:
        assert step.status == "succeeded"


def test_static_problems_are_plan_errors_with_locations(write_playbook: Write) -> None:
    """An unknown method, a relative URL, a status out of range and two bodies are found before the run."""
    path = write_playbook(
        "name: checks\n"
        "steps:\n"
        "  - id: method\n"
        '    http: {method: FETCH, url: "http://127.0.0.1:1/x"}\n'
        "  - id: relative\n"
        "    http:\n"
        "      url: /v1/things\n"
        "  - id: codes\n"
        '    http: {url: "http://127.0.0.1:1/x", expect: [200, 700], json: {}, data: x}\n'
    )
    with pytest.raises(orchestrator.PlaybookError) as caught:
        orchestrator.plan(path)
    lines = str(caught.value).splitlines()
    assert lines == [
        f"{path}:4:20: steps[0].http.method: unknown HTTP method 'FETCH'; use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
        f"{path}:7:12: steps[1].http.url: expected an absolute http(s) URL such as https://api.example.com/v1/items, got '/v1/things'",
        f"{path}:9:55: steps[2].http.expect[1]: expected an HTTP status code from 100 to 599, got 700",
        f"{path}:9:77: steps[2].http.data: give the body as `json` or as `data`, not both",
    ]


async def test_templated_values_are_checked_when_rendered(server: Server, write_playbook: Write) -> None:
    """What a template renders is checked at run time: an unknown method or a non-mapping `headers`
    fails the step at once, before any request."""
    path = write_playbook(
        "name: late\nvars: {api: 'http://127.0.0.1:1', verb: FETCH, hdrs: [1]}\nsteps:\n"
        '  - id: verb\n    on_error: continue\n    retry: 3\n    http: {method: "{{ verb }}", url: "{{ api }}/x"}\n'
        '  - id: hdrs\n    on_error: continue\n    retry: 3\n    http: {url: "{{ api }}/x", headers: "{{ hdrs }}"}\n'
    )
    result = await run(path, vars={"api": server.url})
    assert result.step("verb").attempts == 1 and "unknown HTTP method 'FETCH'" in str(result.step("verb").error)
    assert result.step("hdrs").attempts == 1 and "headers: expected a mapping, got list" in str(result.step("hdrs").error)
    assert server.seen == []


def test_declared_blocking_kind_is_a_plan_error(write_playbook: Write) -> None:
    """`http` runs on the event loop only; declaring it blocking is an error before the run."""
    path = write_playbook(one_step('  - id: get\n    kind: blocking\n    http: {url: "http://127.0.0.1:1/x"}\n'))
    with pytest.raises(orchestrator.PlaybookError, match=r"`http` here cannot run as 'blocking'; it can run as non-blocking"):
        orchestrator.plan(path)


def test_read_only_methods() -> None:
    """GET, HEAD and OPTIONS are read-only; anything else, or a templated method, is not."""
    http = Http()
    assert http.is_read_only({"url": "x"}) and http.is_read_only({"method": "head", "url": "x"})
    assert not http.is_read_only({"method": "POST", "url": "x"})
    assert not http.is_read_only({"method": "{{ m }}", "url": "x"})


def test_planning_imports_no_http_client() -> None:
    """Importing orchestrator and planning an http playbook import neither aiohttp nor httpx."""
    code = (
        "import sys, orchestrator\n"
        "orchestrator.plan(orchestrator.loads('name: x\\nsteps:\\n  - id: a\\n    http: {url: \"http://127.0.0.1:1/\"}\\n'))\n"
        "print(sorted(m for m in ('aiohttp', 'httpx') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@api.example.com/v1?page=2", "https://***@api.example.com/v1?page=2"),
        ("https://api.example.com/x?token=abc&n=1&API_KEY=def", "https://api.example.com/x?token=***&n=1&API_KEY=***"),
        ("https://h/x?X-Amz-Signature=s&X-Amz-Credential=c&sig=z&q=ok", "https://h/x?X-Amz-Signature=***&X-Amz-Credential=***&sig=***&q=ok"),
        ("https://h/x?client_secret=s&password=p&access_token=t#frag", "https://h/x?client_secret=***&password=***&access_token=***#frag"),
        ("http://h:8080/plain", "http://h:8080/plain"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    """URLs lose userinfo and the values of credential-like query parameters, nothing else."""
    assert redact_url(url) == shown


def test_redact_headers_and_scrub() -> None:
    """Credential-like headers are masked; the secrets a request carries are scrubbed from any text."""
    headers: dict[str, Any] = {"Authorization": "Bearer t0ken", "X-Api-Key": "k3y", "Accept": "application/json", "Cookie": "s=1"}
    assert redact_headers(headers) == {"Authorization": "***", "X-Api-Key": "***", "Accept": "application/json", "Cookie": "***"}
    secrets = secrets_in("https://alice:pw1@h/x?token=abc", headers, {"password": "hunter2"})
    text = "refused alice:pw1 with token abc, Bearer t0ken and t0ken alone, key k3y, hunter2"
    assert scrub(text, secrets) == "refused ***:*** with token ***, *** and *** alone, key ***, ***"
