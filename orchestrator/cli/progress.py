"""The live progress view on an interactive terminal (stderr): one row per running step and a line
per finished one. `cli/output.reporter_for` only builds it when stderr is a terminal.

The engine calls the hooks on the event-loop thread; a ticker thread redraws about ten times a
second. The view follows items through their counts (`items_finished`, about every 2 ms while
items run), not item by item: the counts go into a `_StepState`, and the columns read them
when the rows are drawn. Nothing is called per item (a `for_each` may have 1,000,000).

Every other write to the terminal (redraws, finished lines, log lines from any thread) holds one
lock: rich's own refresh thread would redraw while another thread prints a line, and the cursor
arithmetic would then leave copies of the rows behind (seen under a pseudo-terminal, about one run
in three). A hook must never raise: an
exception here would end the run.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console, RenderableType
from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TaskID, TimeElapsedColumn
from rich.progress_bar import ProgressBar
from rich.table import Column
from rich.text import Text

from orchestrator import logs
from orchestrator.engine.events import Reporter

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from orchestrator.engine.results import RunResult, StepResult
    from orchestrator.planner import Plan, PlannedStep

#: How each way a step can end is shown on its finished line.
MARKS = {
    "succeeded": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("-", "dim"),
    "cancelled": ("⊘", "yellow"),
}
_ID_WIDTH = 24  # longer step ids are cut in the rows (the finished lines show them whole)


class _StepState:
    """What a step's row shows. Written on the event loop, read by rich's refresh thread: plain ints
    and floats, so a read may be one item stale but is never torn."""

    __slots__ = ("done", "error", "failed", "has_items", "retries", "task", "total", "wait_until")

    def __init__(self, has_items: bool) -> None:
        self.task = TaskID(-1)
        self.has_items = has_items
        self.total: int | None = None
        self.done = 0
        self.failed = 0
        self.retries = 0
        self.wait_until = 0.0
        self.error = ""


def _state(task: Task) -> _StepState | None:
    state = task.fields.get("state")
    return state if isinstance(state, _StepState) else None


class _Field(ProgressColumn):
    """A Text built once per row (ids and names are not markup); cut with an ellipsis if too long."""

    def __init__(self, name: str, ratio: int | None = None) -> None:
        super().__init__(Column(ratio=ratio, no_wrap=True, overflow="ellipsis"))
        self.name = name

    def render(self, task: Task) -> RenderableType:
        value = task.fields.get(self.name)
        return value if isinstance(value, Text) else Text("")


class _Bar(ProgressColumn):
    """Items done of a `for_each` (pulsing while their number is unknown), steps done on the run's
    row, nothing for a step without items: its spinner says it is busy."""

    def __init__(self, width: int) -> None:
        super().__init__(Column(width=width, no_wrap=True))
        self.width = width

    def render(self, task: Task) -> RenderableType:
        state = _state(task)
        if state is None:
            return ProgressBar(total=task.total or 1, completed=task.completed, width=self.width, complete_style="blue")
        if not state.has_items:
            return Text("")
        style = "red" if state.failed else "green"
        return ProgressBar(
            total=state.total, completed=state.done + state.failed, width=self.width,
            pulse=state.total is None, complete_style=style, finished_style=style,
        )


class _Counts(ProgressColumn):
    """`27/30`, the failed items, the retries so far, and the retry wait in progress."""

    def render(self, task: Task) -> RenderableType:
        state = _state(task)
        text = Text(no_wrap=True, overflow="ellipsis")
        if state is None:
            text.append(f"{task.completed:.0f}/{task.total or 0:.0f} steps", style="blue")
            return text
        if state.has_items:
            text.append(f"{state.done + state.failed}/{state.total if state.total is not None else '?'}")
            if state.failed:
                text.append(f"  {state.failed} failed", style="red")
        if state.retries:
            text.append(f"  ↻ {_retries(state.retries)}", style="yellow")
            left = state.wait_until - time.monotonic()
            if left > 0 and not state.has_items:  # items each wait their own time: no single "next"
                text.append(f", next in {left:.1f}s: {state.error}", style="yellow dim")
        return text


class _Rows(Progress):
    """The rows, narrower than the terminal by the width of `^C`: a full-width row makes the
    terminal wrap when it echoes ^C after it, and every later redraw would leave a copy behind."""

    def __init__(self, *columns: ProgressColumn, screen: Console, **options: Any) -> None:
        self.screen = screen  # set first: Progress.__init__ already renders once
        super().__init__(*columns, console=screen, **options)

    def get_renderables(self) -> Iterable[RenderableType]:
        table = self.make_tasks_table(self.tasks)
        table.width = max(40, self.screen.width - 3)
        yield table


def _retries(n: int) -> str:
    return f"{n} {'retry' if n == 1 else 'retries'}"


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of writing, so log lines reach rich's stderr
    proxy and print above the live rows instead of tearing them; holds the view's lock to do so."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock

    def write(self, text: str) -> int:
        with self.lock:
            return sys.stderr.write(text)

    def flush(self) -> None:
        with self.lock:
            sys.stderr.flush()


class ProgressView(Reporter):
    """A live view on stderr: a row for the run and one per running step (spinner, items bar,
    counts, retries, elapsed time), and above them a line per finished step. A context manager:
    leaving it (normally, on Ctrl-C or on an error) stops the view and restores the terminal."""

    def __init__(self, console: Console | None = None, refresh_per_second: float = 10) -> None:
        self.console = console or Console(stderr=True)
        self._lock = threading.RLock()
        self._interval = 1 / refresh_per_second
        self._stopped = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="orchestrate-progress", daemon=True)
        self._progress = _Rows(
            SpinnerColumn(),
            _Field("name"),
            _Field("where", ratio=3),  # kind and executor give way first on a narrow terminal
            _Bar(width=30 if self.console.width >= 140 else 24 if self.console.width >= 100 else 16),
            _Counts(table_column=Column(ratio=2, no_wrap=True, overflow="ellipsis")),
            TimeElapsedColumn(),
            screen=self.console,
            transient=True,  # the finished lines stay; the live rows go when the run ends
            auto_refresh=False,  # redrawn by `_tick`, under the lock
            # print() to stdout on the same terminal would tear the view; a redirected stdout is left alone
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=True,
            expand=True,
        )
        self._steps: dict[str, _StepState] = {}
        self._width = 12
        self._run: TaskID | None = None

    def __enter__(self) -> ProgressView:
        with self._lock:
            self._progress.start()
            # Rich hides the cursor while live; a second Ctrl-C ends the CLI with os._exit, which runs
            # no cleanup, so the cursor stays visible: no way out of the program can leave it hidden.
            self.console.show_cursor(True)
        settings = logs.active_settings()
        if settings is not None:
            # `logs.configure` captured the real stderr; send log lines through rich's proxy instead.
            # (Loggers cache their stream on first use: the CLI enters this view before any log call.)
            logs.configure(settings, _CurrentStderr(self._lock))  # type: ignore[arg-type]
        self._ticker.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stopped.set()
        if self._ticker.is_alive():
            self._ticker.join()
        with self._lock:
            self._progress.stop()  # also restores the cursor, sys.stdout and sys.stderr

    def _tick(self) -> None:
        while not self._stopped.wait(self._interval):
            with self._lock:
                self._progress.refresh()

    # Reporter hooks, on the event loop.

    def run_started(self, plan: Plan, run_id: str) -> None:
        steps = list(plan.all_steps())
        self._width = min(_ID_WIDTH, max([12, *(len(s.id) for s in steps)]))
        extra = ", ".join(f"{len(s)} {name}" for name, s in (("rollback", plan.rollback), ("finally", plan.finally_)) if s)
        header = Text(plan.playbook.name, style="bold")
        header.append(f"  run {run_id}, {len(plan.steps)} steps" + (f" (+ {extra})" if extra else ""), style="dim")
        name, where = Text(f"{'run':<{self._width}}", style="bold blue"), Text(plan.playbook.name, style="blue")
        with self._lock:
            self.console.print(header)
            self._run = self._progress.add_task(plan.playbook.name, total=len(plan.steps), name=name, where=where, state=None)

    def step_started(self, step: PlannedStep, items: int | None) -> None:
        state = self._steps.get(step.id)
        if state is None:
            name = Text(f"{step.id[: self._width]:<{self._width}}", style="bold")
            where = Text(f"{step.action.name} · {step.kind} on {step.executor}", style="dim")
            state = self._steps[step.id] = _StepState(step.for_each is not None)
            with self._lock:
                state.task = self._progress.add_task(step.id, total=None, name=name, where=where, state=state)
        state.total = items  # a `for_each` step is announced again once its items are known

    def items_finished(self, step: PlannedStep, succeeded: int, failed: int) -> None:
        state = self._steps.get(step.id)
        if state is not None:
            state.done, state.failed = succeeded, failed

    def step_retrying(self, step: PlannedStep, index: int | None, attempt: int, wait: float, error: str) -> None:
        state = self._steps.get(step.id)
        if state is not None:
            state.retries += 1
            state.wait_until = time.monotonic() + wait
            state.error = error.splitlines()[0][:60] if error else ""

    def step_finished(self, step: PlannedStep, result: StepResult) -> None:
        state = self._steps.pop(step.id, None)
        line = self.finished_line(result)
        with self._lock:
            if state is not None:
                self._progress.remove_task(state.task)
            if self._run is not None and step.section == "steps":
                self._progress.advance(self._run)
            self.console.print(line)

    def run_finished(self, result: RunResult) -> None:
        if self._run is not None:
            with self._lock:
                self._progress.remove_task(self._run)
            self._run = None

    def finished_line(self, result: StepResult) -> Text:
        """`✓ vms  succeeded in 1.52s, 30/30 items, 2 retries`: one finished step, as it stays on screen."""
        mark, style = MARKS.get(result.status, ("?", "white"))
        line = Text(f"{mark} ", style=style)
        line.append(f"{result.id:<{self._width}}", style="bold")
        section = "" if result.section == "steps" else f" ({result.section})"
        line.append(f" {result.status}{section}", style=style)
        if result.status != "skipped":
            line.append(f" in {result.duration_s:.2f}s")
        if result.items is not None:
            line.append(f", {result.items - result.items_failed}/{result.items} items", style="dim")
        if result.concurrency is not None:  # `concurrency: auto`: what it settled on
            line.append(f", concurrency settled at {result.concurrency}", style="dim")
        if result.resumed:
            line.append(" (resumed: from the record)", style="dim")
        elif result.items_resumed:
            line.append(f" ({result.items_resumed:,} items from the record)", style="dim")
        if result.retries:
            line.append(f", {_retries(result.retries)}", style="yellow")
        if result.error and result.status == "failed":
            line.append(f": {result.error.splitlines()[0][:160]}", style=style)
        return line
