"""`orchestrate runs RUN_ID --trace/--html`: a recorded run's timeline as a Chrome trace and as a
web page, each checked the way it is used: the trace against the trace event format, the page in
a headless Chromium."""

from __future__ import annotations

import json
import os
import sqlite3
import textwrap
from typing import TYPE_CHECKING, Any

from tests.cli.headless import load
from tests.cli.test_cli import ROOT
from tests.cli.test_history import orchestrate, runs

if TYPE_CHECKING:
    from pathlib import Path



def last_run(history: Path) -> str:
    run_id: str = runs(history)["runs"][0]["run_id"]
    return run_id


def validate_trace(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """The trace event format's rules this file relies on; the complete events."""
    events = trace["traceEvents"]
    assert events
    for event in events:
        assert {"ph", "ts", "pid", "tid"} <= event.keys(), event
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
        assert isinstance(event["ts"], int | float)
        if event["ph"] == "X":
            assert isinstance(event["dur"], int | float) and event["dur"] >= 0, event
        else:
            assert event["ph"] == "M" and event["name"] in ("process_name", "process_sort_index", "thread_name", "thread_sort_index")
    complete = [e for e in events if e["ph"] == "X"]
    # Every track is named, and spans of one track never overlap unless nested.
    named = {(e["pid"], e["tid"]) for e in events if e["name"] == "thread_name"}
    assert {(e["pid"], e["tid"]) for e in complete} <= named
    by_track: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for e in complete:
        by_track.setdefault((e["pid"], e["tid"]), []).append(e)
    for spans in by_track.values():
        spans.sort(key=lambda e: (e["ts"], -e["dur"]))
        open_ends: list[float] = []
        for e in spans:
            while open_ends and open_ends[-1] <= e["ts"] + 1e-3:
                open_ends.pop()
            if open_ends:
                assert e["ts"] + e["dur"] <= open_ends[-1] + 1e-3, f"overlapping, not nested: {e}"
            open_ends.append(e["ts"] + e["dur"])
    return complete


def test_the_trace_of_deploy_shows_steps_threads_and_worker_processes_on_their_own_tracks(tmp_path: Path) -> None:
    """`playbooks/deploy.yml`, recorded, then written as a Chrome trace: valid, with a track per
    pool thread and a process per worker process, and every step and its items on them."""
    history = tmp_path / "runs.sqlite"
    proc = orchestrate(str(ROOT / "playbooks" / "deploy.yml"), "--format", "json", history=history)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["advice"] == []
    assert result["started_at"].endswith("Z") and all(s["started_at"] for s in result["steps"] if s["section"] == "steps")
    trace_file = tmp_path / "t.json"
    shown = orchestrate("runs", result["run_id"], "--trace", str(trace_file), history=history)
    assert shown.returncode == 0, shown.stderr
    trace = json.loads(trace_file.read_text())
    complete = validate_trace(trace)
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    processes = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"}
    assert any(n.startswith("thread orchestrator-blocking_") for n in names)
    workers = [pid for pid, name in processes.items() if name.startswith("worker process ")]
    assert workers
    assert "event loop" in names
    upload = [e for e in complete if e["cat"] == "item" and e["args"]["step"] == "upload"]
    configs = [e for e in complete if e["cat"] == "item" and e["args"]["step"] == "configs"]
    assert upload and all(e["args"]["lane"].startswith("thread:") for e in upload)
    assert configs and {e["pid"] for e in configs} <= set(workers)
    steps = {e["args"]["step"] for e in complete if e["cat"] == "step"}
    assert {"preflight", "vms", "configs", "upload", "health", "summary"} <= steps
    assert any(e["cat"] == "wait" and e["name"].startswith("limit infra-api") for e in complete)  # rate-limit waits
    # The history has the timestamps too.
    with sqlite3.connect(history) as db:
        rows = db.execute("SELECT started_at FROM steps WHERE run_id = ? AND section = 'steps'", (result["run_id"],)).fetchall()
    assert rows and all(r[0] for r in rows)


BIG = """
name: ten thousand items
limits:
  api: {rate: 400/s}
steps:
  - id: requests
    for_each: "{{ range(10000) }}"
    concurrency: 200
    sleep: 10ms
  - id: sdk
    kind: blocking
    for_each: "{{ range(64) }}"
    concurrency: 8
    call: helpers:sdk_call
    with: {seconds: 0.01}
  - id: crunch
    kind: cpu
    for_each: "{{ range(8) }}"
    concurrency: 4
    call: helpers:spin
    with: {rounds: 200000}
  - id: limited
    for_each: "{{ range(40) }}"
    concurrency: 10
    limit: api
    log: "{{ item }}"
"""

HELPERS = """
import time

def sdk_call(seconds):
    time.sleep(seconds)
    return seconds

def spin(rounds):
    return sum(i * i % 7 for i in range(rounds))
"""


async def test_the_html_timeline_of_a_10000_item_run_loads_in_chromium_without_errors(tmp_path: Path) -> None:
    """The page of a run with 10,000 items (and thread, process and rate-limited steps) opens in
    headless Chromium with no console error and draws its spans; a screenshot is taken."""
    (tmp_path / "helpers.py").write_text(HELPERS)
    playbook = tmp_path / "big.yml"
    playbook.write_text(textwrap.dedent(BIG))
    history = tmp_path / "runs.sqlite"
    proc = orchestrate(str(playbook), "--format", "json", history=history)
    assert proc.returncode == 0, proc.stderr
    page = tmp_path / "timeline.html"
    shown = orchestrate("runs", last_run(history), "--html", str(page), history=history)
    assert shown.returncode == 0, shown.stderr
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # nothing to fetch: the page is whole
    loaded = await load(page, {"drawn": "Number(document.body.dataset.drawn)", "canvas": "document.querySelector('canvas').height"})
    assert loaded.errors == []
    assert loaded.values["drawn"] > 100 and loaded.values["canvas"] > 100
    assert loaded.screenshot.startswith(b"\x89PNG") and len(loaded.screenshot) > 10_000
    (tmp_path / "timeline.png").write_bytes(loaded.screenshot)
    if os.environ.get("ORCHESTRATOR_SCREENSHOT"):  # how docs/timeline.png is made
        import shutil

        shutil.copy(tmp_path / "timeline.png", os.environ["ORCHESTRATOR_SCREENSHOT"])


async def test_a_page_with_an_error_is_caught(tmp_path: Path) -> None:
    """The check is live: a page whose script throws is reported."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>")
    loaded = await load(page, {})
    assert any("undefinedFunction" in e for e in loaded.errors)
