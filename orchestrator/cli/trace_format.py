"""A recorded run in the Chrome trace event format (JSON object form), as Perfetto and
chrome://tracing load it: `orchestrate runs RUN_ID --trace FILE.json`.

Every span is a complete event (``"ph": "X"``, with ``ts`` and ``dur`` in microseconds from the
run's start); each track (`cli/tracks.py`) is a thread of a process, named with ``M`` metadata
events: the controller's process holds the steps, the event loop and the pool threads; each worker
process is its own process (its real pid), each Dask worker a stand-in one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.cli.tracks import layout

if TYPE_CHECKING:
    from orchestrator.history.timeline import RunTimeline


def chrome_trace(timeline: RunTimeline) -> dict[str, Any]:
    laid = layout(timeline)
    origin = timeline.started
    events: list[dict[str, Any]] = []
    named: set[int] = set()
    for order, track in enumerate(laid.tracks):
        if track.process not in named:
            named.add(track.process)
            events.append(_meta("process_name", track.process, 0, {"name": track.process_name}))
            events.append(_meta("process_sort_index", track.process, 0, {"sort_index": len(named)}))
        events.append(_meta("thread_name", track.process, track.thread, {"name": track.name}))
        events.append(_meta("thread_sort_index", track.process, track.thread, {"sort_index": order}))
    for p in laid.placed:
        span, track = p.span, laid.tracks[p.track]
        events.append({
            "name": _name(span), "cat": span.what, "ph": "X", "pid": track.process, "tid": track.thread,
            "ts": round((span.start - origin) * 1e6, 3), "dur": round(max(span.end - span.start, 0.0) * 1e6, 3),
            "args": _args(span),
        })
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {"run_id": timeline.run_id, "playbook": timeline.playbook, "status": timeline.status,
                      "advice": list(timeline.advice)},
    }


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "ts": 0, "args": args}


def _name(span: Any) -> str:
    if span.what == "step":
        return f"step {span.step}"
    if span.what == "item":
        return f"{span.step} [{span.item}]" if span.item is not None else f"{span.step}"
    if span.what == "stall":
        return f"loop held by {span.step}" if span.step else "loop held"
    return f"{span.status}" + (f" [{span.item}]" if span.item is not None else "")


def _args(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"step": span.step}
    if span.item is not None:
        out["item"] = span.item
    if span.lane:
        out["lane"] = span.lane
    if span.status:
        out["status"] = span.status
    out.update({k: v for k, v in span.detail.items() if v is not None})
    return out
