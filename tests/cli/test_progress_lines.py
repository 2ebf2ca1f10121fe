"""The live view's line for a finished step says what a user needs from it: where a
`concurrency: auto` step settled, and what a resumed run took from its record."""

from __future__ import annotations

from orchestrator.cli.progress import ProgressView
from orchestrator.engine.results import StepResult


def _line(result: StepResult) -> str:
    return ProgressView().finished_line(result).plain


def test_an_auto_step_shows_where_its_concurrency_settled() -> None:
    line = _line(StepResult("creates", "non-blocking", "asyncio", "succeeded", attempts=1, items=2000, concurrency=52))
    assert "2000/2000 items, concurrency settled at 52" in line


def test_a_resumed_run_shows_what_came_from_the_record() -> None:
    assert "(resumed: from the record)" in _line(StepResult("network", "non-blocking", "asyncio", "succeeded", resumed=True))
    partial = StepResult("vms", "non-blocking", "asyncio", "succeeded", items=10000, items_resumed=4922)
    assert "(4,922 items from the record)" in _line(partial)
    assert "record" not in _line(StepResult("plain", "non-blocking", "asyncio", "succeeded"))
