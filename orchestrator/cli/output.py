"""What the CLI writes to stdout in each format, and the progress view on stderr."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from orchestrator.api import new_run_id
from orchestrator.cli import render
from orchestrator.engine.events import Reporter

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from types import TracebackType

    from orchestrator.engine.results import RunResult
    from orchestrator.errors import Diagnostic
    from orchestrator.planner import Plan


def diagnostics(items: Sequence[Diagnostic], fmt: str, playbook: str) -> None:
    """Invalid input: FILE:LINE:COL lines on stderr (and the chosen format on stdout for CI)."""
    for d in items:
        print(d, file=sys.stderr)
    if fmt == "json":
        print(render.to_json({"playbook": playbook, "status": "invalid", "errors": [
            {"file": d.file, "line": d.line, "col": d.col, "message": d.message} for d in items]}))
    elif fmt in ("junit", "github"):
        from orchestrator.cli import ci_formats

        print(ci_formats.diagnostics(items, fmt, playbook))


def planned(plan: Plan, fmt: str) -> None:
    summary = render.plan_summary(plan, new_run_id())
    if fmt == "json":
        print(render.to_json(summary))
    elif fmt in ("junit", "github"):
        from orchestrator.cli import ci_formats

        print(ci_formats.plan(summary, fmt, str(plan.playbook.path or plan.playbook.name), ci_formats.places(plan)))
    else:
        print(render.plan_text(plan))


def finished(result: RunResult, fmt: str, plan: Plan | None = None) -> None:
    if fmt == "json":
        print(render.to_json(result.summary()))
    elif fmt in ("junit", "github"):
        from orchestrator.cli import ci_formats

        where = ci_formats.places(plan) if plan is not None else None
        print(ci_formats.result(result.summary(), fmt, result.path or result.playbook, where))
    else:
        from orchestrator.logs import wants_colour

        lines = [render.result_text(result, width=table_width(), colour=wants_colour(sys.stdout))]
        lines.extend(
            f"{step.id} would send: {render.to_json({'request': step.planned})}" for step in result.steps if step.status == "planned"
        )
        resumed = [s.id for s in result.steps if s.resumed]
        if resumed:
            lines.append(f"resumed: {', '.join(resumed)} succeeded before and were not run again")
        if result.left_out:
            lines.append(f"left out (--only, --skip): {', '.join(result.left_out)}")
        lines.extend(advice.line() for advice in result.advice)  # the tag advisor's findings, after the summary
        print("\n".join(lines))


def table_width() -> int | None:
    """How wide the summary may be: the terminal's width when stdout is one, or `COLUMNS`; on a pipe
    or file, as wide as it needs (a CI log keeps the whole error)."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        import shutil

        return shutil.get_terminal_size((200, 24)).columns
    return None


class _Quiet(Reporter):
    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        return None


def wants_progress(args: argparse.Namespace) -> bool:
    return not args.no_progress and sys.stderr.isatty() and sys.stdout.isatty()


def reporter_for(args: argparse.Namespace) -> Any:
    """A live progress view when both stdout and stderr are a terminal; nothing animated otherwise."""
    if not wants_progress(args):
        return _Quiet()
    from orchestrator.cli.progress import ProgressView

    return ProgressView()
