"""OpenTelemetry: with the standard OTLP variables set, a run, its steps and its traced items arrive
as spans carrying the run's id: at the SDK's in-memory exporter, and at a real OTLP/HTTP receiver
on 127.0.0.1 that decodes the protobuf it is sent."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import orchestrator
from orchestrator.engine.otel import configured, export_run

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

PLAYBOOK = """
name: traced
steps:
  - id: fan
    for_each: "{{ range(5) }}"
    sleep: 5ms
  - id: work
    kind: blocking
    for_each: "{{ range(3) }}"
    call: MODULE:work
  - id: flaky
    retry: {attempts: 2, delay: 10ms}
    call: MODULE:flaky
"""

HELPERS = """
import time
CALLS = []

def work():
    time.sleep(0.005)
    return 1

def flaky():
    CALLS.append(1)
    if len(CALLS) == 1:
        raise RuntimeError("first call fails")
    return "ok"
"""


def playbook(tmp_path: Path) -> Path:
    module = "otel_" + tmp_path.name  # a module name of its own: each test imports its own copy
    (tmp_path / f"{module}.py").write_text(HELPERS)
    path = tmp_path / "traced.yml"
    path.write_text(textwrap.dedent(PLAYBOOK).replace("MODULE", module))
    return path


def attributes(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_spans_of_the_run_its_steps_and_items_reach_the_in_memory_exporter(tmp_path: Path) -> None:
    result = await orchestrator.arun(playbook(tmp_path))
    assert result.status == "succeeded"
    exporter = InMemorySpanExporter()
    made = export_run(result, exporter)
    spans = exporter.get_finished_spans()
    assert len(spans) == made
    assert all(attributes(s)["orchestrator.run_id"] == result.run_id for s in spans)
    by_name = {s.name: s for s in spans}
    run = by_name["run traced"]
    steps = [s for s in spans if s.name.startswith("step ")]
    assert {s.name for s in steps} == {"step fan", "step work", "step flaky"}
    assert all(s.parent is not None and s.parent.span_id == run.context.span_id for s in steps)
    items = [s for s in spans if " item " in s.name]
    assert {attributes(s)["orchestrator.item.index"] for s in items if s.name.startswith("fan")} == set(range(5))
    lanes = {attributes(s)["orchestrator.lane"] for s in items if s.name.startswith("work")}
    assert lanes and all(lane.startswith("thread:orchestrator-blocking_") for lane in lanes)
    assert any(s.name == "backoff" for s in spans)  # the retry's wait
    assert run.start_time is not None and run.end_time is not None and run.start_time < run.end_time


async def test_spans_arrive_at_an_otlp_http_receiver_with_the_run_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        received.append(message)
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert not configured()
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "orchestrator-test")
        assert configured()
        result = await orchestrator.arun(playbook(tmp_path))
    finally:
        await runner.cleanup()
    assert result.status == "succeeded"
    spans = [
        (span, {kv.key: kv.value for kv in span.attributes}, resource)
        for message in received for resource in message.resource_spans
        for scope in resource.scope_spans for span in scope.spans
    ]
    names = {span.name for span, _, _ in spans}
    assert {"run traced", "step fan", "step work", "step flaky"} <= names
    assert all(attrs["orchestrator.run_id"].string_value == result.run_id for _, attrs, _ in spans)
    service = {kv.key: kv.value.string_value for kv in spans[0][2].resource.attributes}["service.name"]
    assert service == "orchestrator-test"
