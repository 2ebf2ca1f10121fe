"""The text summary: a title over a box table with a row per step, plain unless coloured on purpose,
never wider than it may be."""

from __future__ import annotations

import re

from orchestrator.cli.render import COLUMNS, result_text
from orchestrator.engine.results import RunResult, StepResult

SGR = re.compile(r"\x1b\[[0-9;]*m")


def run_of(*steps: StepResult) -> RunResult:
    return RunResult(run_id="20260101T000000-abcdef12", playbook="deploy", status="failed", duration_s=1.5, steps=steps)


def cells(line: str) -> list[str]:
    return [c.strip() for c in re.split("[│┃]", line.strip("│┃"))]


STEPS = (
    StepResult(id="network", kind="non-blocking", executor="asyncio", status="succeeded", attempts=1, duration_s=0.25),
    StepResult(id="vms", kind="non-blocking", executor="asyncio", status="failed", attempts=3, retries=2, items=30,
               items_failed=2, duration_s=1.2, error="2 of 30 items failed\nfirst: [4] HTTP 503"),
    StepResult(id="cleanup", kind="blocking", executor="threads", status="succeeded", attempts=1, section="finally"),
)


def test_a_row_per_step_under_a_header_with_every_column() -> None:
    """The header names the columns; each step's row says what happened, a finally step marked."""
    lines = result_text(run_of(*STEPS)).splitlines()
    assert "deploy: failed in 1.50s  (run 20260101T000000-abcdef12)" in lines[0]
    rows = [cells(line) for line in lines if line[:1] in ("│", "┃")]
    assert rows[0] == list(COLUMNS)
    assert rows[1] == ["network", "non-blocking", "asyncio", "succeeded", "1", "", "0.25s", ""]
    assert rows[2] == ["vms", "non-blocking", "asyncio", "failed", "3 (+2 retries)", "28/30", "1.20s",
                       "2 of 30 items failed first: [4] HTTP 503"]
    assert rows[3][0] == "cleanup (finally)"


def test_every_line_of_the_table_has_the_same_width_and_the_borders_meet() -> None:
    """Cells are padded to their column: the box closes on every line, and the separators line up."""
    lines = result_text(run_of(*STEPS)).splitlines()[1:]
    assert len({len(line) for line in lines}) == 1
    bars = {tuple(i for i, ch in enumerate(line) if ch in "┃│┳╇┴") for line in lines[1:-1] if line[0] != "┡"}
    assert len(bars) == 1
    assert lines[0].startswith("┏") and lines[-1].startswith("└")


def test_a_table_wider_than_allowed_shortens_the_error_then_the_step() -> None:
    """At a given width the error is cut with an ellipsis first; the other columns stay whole."""
    long = StepResult(id="a-step-with-a-long-name", kind="blocking", executor="threads", status="failed", attempts=1,
                      error="connection refused " * 10)
    text = result_text(run_of(long), width=100)
    table = text.splitlines()[1:]
    assert all(len(line) <= 100 for line in table)
    row = cells(next(line for line in table if line.startswith("│")))
    assert row[0] == "a-step-with-a-long-name" and row[-1].endswith("…")
    narrow = result_text(run_of(long), width=80).splitlines()
    row = cells(next(line for line in narrow if line.startswith("│")))
    assert row[0].endswith("…") and len(narrow[1]) <= 80


def test_plain_unless_colour_is_asked_for_and_then_only_styles_added() -> None:
    """No escape sequence by default; with colour the statuses are coloured, and without the
    sequences the text is the same."""
    plain = result_text(run_of(*STEPS))
    assert not SGR.search(plain)
    coloured = result_text(run_of(*STEPS), colour=True)
    assert "\x1b[31mfailed" in coloured and "\x1b[32msucceeded" in coloured
    assert SGR.sub("", coloured) == plain


def test_thousands_of_steps_give_a_line_each() -> None:
    """A wide run is a line per step (plus title, three rules and the header)."""
    many = [StepResult(id=f"s{i}", kind="non-blocking", executor="asyncio", status="succeeded", attempts=1)
            for i in range(5000)]
    assert len(result_text(run_of(*many)).splitlines()) == 5000 + 5
