"""OpenTelemetry: a run, its steps, their (sampled) items and waits, exported as spans when the
standard `OTEL_EXPORTER_OTLP_*` variables ask for it. Optional: the `otel` extra installs the SDK
and the OTLP/HTTP exporter.

When `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and
`OTEL_SDK_DISABLED` is not true, and `OTEL_TRACES_EXPORTER` is not `none`), a run's spans are sent
when it ends, from its timeline: one span for the run, a child per step that started, a child of
the step per traced item (`engine/timeline.py` says which items are traced) and per wait or
retried attempt. Every span carries `orchestrator.run_id`. The exporter reads the other standard
variables itself (headers, timeout, compression); the protocol is OTLP/HTTP with protobuf.

The spans are built after the run from what it recorded, with the times it recorded, so tracing
costs the run nothing while it goes; the export runs in a thread, and a collector that is down
costs the run its spans, never its result.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from orchestrator.logs import get_logger

if TYPE_CHECKING:
    from orchestrator.engine.results import RunResult, StepResult
    from orchestrator.engine.timeline import Timeline

ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

log = get_logger()


def configured() -> bool:
    """Whether the environment asks for spans to be exported."""
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINTS)


async def export_in_thread(result: RunResult) -> None:
    """Export `result`'s spans off the event loop; a failure is logged, never raised."""
    try:
        await asyncio.to_thread(export_run, result)
    except ImportError:
        log.warning("otel.unavailable", note="OTEL_EXPORTER_OTLP_* is set but the `otel` extra is not installed")
    except Exception as exc:
        log.warning("otel.export_failed", error=f"{type(exc).__name__}: {exc}")


def export_run(result: RunResult, exporter: Any = None) -> int:
    """Send the spans of `result` to `exporter` (default: OTLP/HTTP as the environment configures
    it); returns how many spans were made."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    timeline = result.timeline
    if timeline is None or result.started_at is None or result.ended_at is None:
        return 0
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "orchestrator"}
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("orchestrator")
    common = {"orchestrator.run_id": result.run_id}
    count = 1
    try:
        run = tracer.start_span(
            f"run {result.playbook}", start_time=_ns(result.started_at),
            attributes={**common, "orchestrator.playbook": result.playbook, "orchestrator.status": result.status},
        )
        _status(run, result.status, None)
        inside = trace.set_span_in_context(run)
        for step in result.steps:
            if step.started_at is not None and step.ended_at is not None:
                count += _step(tracer, inside, step, timeline, common)
        run.end(end_time=_ns(result.ended_at))
    finally:
        provider.shutdown()  # flushes what the batch processor holds
    return count


def _step(tracer: Any, parent: Any, step: StepResult, timeline: Timeline, common: dict[str, str]) -> int:
    from opentelemetry import trace

    assert step.started_at is not None and step.ended_at is not None
    span = tracer.start_span(f"step {step.id}", context=parent, start_time=_ns(step.started_at), attributes={
        **common, "orchestrator.step.id": step.id, "orchestrator.step.kind": step.kind,
        "orchestrator.step.executor": step.executor, "orchestrator.step.status": step.status,
        "orchestrator.step.attempts": step.attempts, "orchestrator.step.section": step.section,
        **({"orchestrator.step.items": step.items} if step.items is not None else {}),
    })
    _status(span, step.status, step.error)
    inside = trace.set_span_in_context(span)
    count = 1
    for item in timeline.items.get(step.id, ()):
        name = f"{step.id} item {item.index}" if item.index is not None else f"{step.id} call"
        child = tracer.start_span(name, context=inside, start_time=_ns(timeline.wall(item.started)), attributes={
            **common, "orchestrator.step.id": step.id, "orchestrator.lane": item.lane,
            **({"orchestrator.item.index": item.index} if item.index is not None else {}),
            **({"orchestrator.cpu_s": item.cpu} if item.cpu is not None else {}),
        })
        _status(child, "succeeded" if item.ok else "failed", None)
        child.end(end_time=_ns(timeline.wall(item.ended)))
        count += 1
    for mark in timeline.marks:
        if mark.step == step.id:
            child = tracer.start_span(mark.what, context=inside, start_time=_ns(timeline.wall(mark.started)), attributes={
                **common, "orchestrator.step.id": step.id, "orchestrator.detail": mark.detail,
                **({"orchestrator.item.index": mark.index} if mark.index is not None else {}),
            })
            child.end(end_time=_ns(timeline.wall(mark.ended)))
            count += 1
    span.end(end_time=_ns(step.ended_at))
    return count


def _status(span: Any, status: str, error: str | None) -> None:
    from opentelemetry.trace import Status, StatusCode

    if status in ("failed", "cancelled", "interrupted"):
        span.set_status(Status(StatusCode.ERROR, error or status))


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)
