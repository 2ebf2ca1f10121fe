"""`orchestrate runs`: the recorded runs, newest first; `orchestrate runs RUN_ID`: one run's steps and
advice; with `--trace FILE.json` / `--html FILE.html`, its timeline as a Chrome trace / a web page."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence


def runs(argv: Sequence[str]) -> int:
    from orchestrator.cli.arguments import build_runs_parser

    args = build_runs_parser().parse_args(argv)
    from orchestrator.cli import output
    from orchestrator.config import load_config
    from orchestrator.errors import InvalidInput
    from orchestrator.history import HistoryUnavailable, history_path

    try:
        settings = load_config(args.config).history
    except InvalidInput as exc:
        output.diagnostics(exc.diagnostics, "text", args.config)
        return 2
    # A file named on the command line is read whatever the configuration or ORCHESTRATOR_HISTORY say.
    try:
        path = Path(args.history).expanduser() if args.history else history_path(settings.path, enabled=settings.enabled)
    except HistoryUnavailable as exc:
        print(f"orchestrate: {exc}", file=sys.stderr)
        return 2
    if path is None:
        print("orchestrate: run history is off (history.enabled: false, or ORCHESTRATOR_HISTORY=off)", file=sys.stderr)
        return 2
    try:
        return _show(args, path)
    except sqlite3.Error as exc:  # a corrupt or foreign file: say so, never a traceback
        print(
            f"{path}:1:1: cannot read the run history: {exc}; move the file aside (the next run starts a new one) "
            "or pass --history FILE",
            file=sys.stderr,
        )
        return 2


def _show(args: argparse.Namespace, path: Path) -> int:
    from orchestrator.history import find_run, list_runs

    if args.run_id is None:
        records = list_runs(path, args.limit)
        if args.format == "json":
            print(json.dumps({"history": str(path), "runs": [r.summary() for r in records]}, indent=2))
        else:
            _table(["run", "playbook", "status", "started", "duration", "steps ended", "failed step", "resume"], [
                [r.run_id, r.playbook, r.status, r.summary()["started_at"], _seconds(r.duration_s),
                 f"{r.steps_ended}/{r.steps}", r.failed or "", "resumable" if r.resumable else ""] for r in records
            ], f"{len(records)} run(s) in {path}; `orchestrate resume RUN_ID` continues a resumable one")
        return 0
    found = find_run(path, args.run_id)
    if found is None:
        print(f"orchestrate: no single run matches {args.run_id!r} in {path}; `orchestrate runs` lists them", file=sys.stderr)
        return 2
    record, steps = found
    advice, timeline = _timeline(path, record.run_id, bool(args.trace or args.html))
    if timeline is not None:
        code = _write_files(args, timeline)
        if code:
            return code
    if args.format == "json":
        print(json.dumps({**record.summary(), "steps": steps, "advice": advice}, indent=2))
    else:
        _table(["step", "section", "kind", "executor", "status", "attempts", "duration", "error"], [
            [s["step_id"], s["section"], s["kind"], s["executor"], s["status"], str(s["attempts"]),
             _seconds(s["duration_s"]), s["error"] or ""] for s in steps
        ], f"run {record.run_id} ({record.playbook}): {record.status}, {record.steps_ended} of {record.steps} steps ended")
        for a in advice:
            print(f"advice: step {a['step']!r} is tagged {a['tagged']}, suggested {a['suggested']}: {a['evidence']}")
    return 0


def _timeline(path: Path, run_id: str, whole: bool) -> tuple[list[dict[str, str]], Any]:
    """The run's advice, and its whole timeline when a file is to be written."""
    from orchestrator.history.store import connect
    from orchestrator.history.timeline import advice_of, load

    with connect(path) as db:
        if not whole:
            return advice_of(db, run_id), None
        timeline = load(db, run_id)
    return (list(timeline.advice) if timeline is not None else []), timeline


def _write_files(args: argparse.Namespace, timeline: Any) -> int:
    pages = []
    if args.trace:
        from orchestrator.cli.trace_format import chrome_trace

        pages.append((args.trace, json.dumps(chrome_trace(timeline), separators=(",", ":"))))
    if args.html:
        from orchestrator.cli.timeline_html import timeline_page

        pages.append((args.html, timeline_page(timeline)))
    for name, text in pages:
        try:
            Path(name).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"orchestrate: cannot write {name}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"orchestrate: wrote {name}", file=sys.stderr)
    return 0


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}s"


def _table(columns: list[str], rows: list[list[str]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, no_wrap=i == 0)  # ids are copied from here: never folded
    for row in rows:
        table.add_row(*row)
    # Piped or captured, the table is as wide as it needs, not the 80 columns rich assumes.
    Console(width=None if sys.stdout.isatty() else 240).print(table)
