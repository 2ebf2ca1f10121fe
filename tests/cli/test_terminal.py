"""What a person sees running `orchestrate` in a terminal, and that nothing is animated in a pipe.

`orchestrate` runs under a real pseudo-terminal (pexpect); its output is fed to a virtual screen
(pyte), and the tests assert on the screen's text, as a person would read it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pexpect
import pyte

PLAYBOOKS = Path(__file__).parent / "playbooks"
ROOT = Path(__file__).resolve().parents[2]
ROWS, COLS = 40, 120
SPINNER = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")  # rich's default `dots` spinner: only a live row shows one
LIVE_ROW = "^[" + "".join(sorted(SPINNER)) + "] "


def _env() -> dict[str, str]:
    """This environment as a colour terminal would give it, without overrides of rich's detection."""
    drop = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, "TERM": "xterm-256color"}


@dataclass
class Session:
    """A finished terminal session: exit status, screens captured on the way, the last screen."""

    status: int | None
    seen: dict[str, list[str]] = field(default_factory=dict)
    screen: list[str] = field(default_factory=list)
    cursor_hidden: bool = False


Watch = Callable[[list[str]], bool]


def in_terminal(
    playbook: str, *args: str, watch: dict[str, Watch] | None = None, interrupt_when: Watch | None = None
) -> Session:
    """Run `orchestrate` in a 40x120 pseudo-terminal to the end. `watch` names conditions on the
    screen: the first screen meeting each is kept. `interrupt_when` sends Ctrl-C once it holds."""
    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.ByteStream(screen)
    child: pexpect.spawn[bytes] = pexpect.spawn(
        sys.executable, ["-m", "orchestrator.cli.main", str(PLAYBOOKS / playbook), *args],
        cwd=str(ROOT), env=_env(), dimensions=(ROWS, COLS),
    )
    session = Session(status=None)
    pending = dict(watch or {})
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                stream.feed(child.read_nonblocking(65536, timeout=0.05))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                break
            lines = [line.rstrip() for line in screen.display]
            for name, condition in list(pending.items()):
                if condition(lines):
                    session.seen[name] = lines
                    del pending[name]
            if interrupt_when is not None and interrupt_when(lines):
                child.sendintr()
                interrupt_when = None
        else:
            raise AssertionError("orchestrate did not finish within 60 s")
    finally:
        child.close(force=True)
    session.status = child.exitstatus
    session.screen = [line.rstrip() for line in screen.display]
    session.cursor_hidden = screen.cursor.hidden
    return session


def table_rows(lines: list[str]) -> dict[str, list[str]]:
    """The summary table's rows (the header's too) by their first cell, each as its list of cells."""
    rows: dict[str, list[str]] = {}
    for line in lines:
        if line[:1] in ("│", "┃"):
            cells = [c.strip() for c in re.split("[│┃]", line.strip("│┃"))]
            rows[cells[0]] = cells
    return rows


def items_bar_running(lines: list[str]) -> bool:
    """A row for `items` with a bar and a count between 0 and 30 (exclusive)."""
    for line in lines:
        match = re.match(LIVE_ROW + r"items .*━.* (\d+)/30\b", line)
        if match and 0 < int(match.group(1)) < 30:
            return True
    return False


def retry_counted(lines: list[str]) -> bool:
    """The `flaky` row counts one retry."""
    return any(re.match(LIVE_ROW + r"flaky .*↻ 1 retry", line) for line in lines)


def test_live_view_shows_items_and_retries_then_the_summary_table(tmp_path: Path) -> None:
    """While running, a bar counts the `for_each` items and a counter the retries; at the end the
    live rows are gone, a line per finished step stays, and the summary table lists every step."""
    session = in_terminal(
        "progress.yml", "--var", f"flag={tmp_path / 'flag'}",
        watch={"items": items_bar_running, "retry": retry_counted},
    )
    assert session.status == 0
    assert "items" in session.seen, "no progress bar for `items` was ever on screen"
    assert "retry" in session.seen, "the retry was never counted on screen"
    screen = session.screen
    assert not any(re.match(LIVE_ROW, line) for line in screen), "a live row was left behind"
    assert any(re.match(r"✓ items +succeeded in [\d.]+s, 30/30 items", line) for line in screen)
    assert any(re.match(r"✓ flaky +succeeded in [\d.]+s, 1 retry$", line) for line in screen)
    assert any(re.match(r"- never +skipped", line) for line in screen)
    assert any("terminal progress: succeeded" in line for line in screen)
    rows = table_rows(screen)
    assert rows["step"][:4] == ["step", "kind", "executor", "status"]
    expected = {
        "items": ["non-blocking", "asyncio", "succeeded"],
        "flaky": ["blocking", "threads", "succeeded"],
        "pause": ["non-blocking", "asyncio", "succeeded"],
        "never": ["non-blocking", "asyncio", "skipped"],
        "goodbye (finally)": ["non-blocking", "asyncio", "succeeded"],
    }
    assert {step: rows[step][1:4] for step in expected} == expected
    assert rows["flaky"][4].startswith("2") and "1 retr" in rows["flaky"][4]
    assert not session.cursor_hidden


def test_ctrl_c_stops_the_view_cleanly(tmp_path: Path) -> None:
    """Ctrl-C in the terminal: the running step is cancelled, `finally` runs, the live rows are
    cleared, the cursor is visible, and the exit status is 130."""
    marker = tmp_path / "finally-ran"
    session = in_terminal(
        "interrupt.yml", "--var", f"marker={marker}",
        interrupt_when=lambda lines: any(re.match(LIVE_ROW + r"long +shell", line) for line in lines),
    )
    assert session.status == 130
    assert marker.exists()
    screen = session.screen
    assert not any(re.match(LIVE_ROW, line) for line in screen), "a live row was left behind"
    assert any(re.match(r"⊘ long +cancelled", line) for line in screen)
    assert any(re.match(r"✓ mark +succeeded \(finally\)", line) for line in screen)
    assert table_rows(screen)["long"][3] == "cancelled"
    assert not session.cursor_hidden


def test_no_escape_codes_when_piped(tmp_path: Path) -> None:
    """With stdout and stderr piped, the same run writes no escape sequence to either."""
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", str(PLAYBOOKS / "progress.yml"), "--var", f"flag={tmp_path / 'flag'}"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=_env(),
    )
    assert done.returncode == 0, done.stderr
    assert "terminal progress: succeeded" in done.stdout
    assert "step.retry" in done.stderr  # the logs are there, as plain JSON lines
    assert "\x1b[" not in done.stdout
    assert "\x1b[" not in done.stderr


def test_worker_process_log_lines_are_printed_above_the_live_view() -> None:
    """Warnings logged in worker processes go through the CLI's own stderr: each is printed whole,
    above the live rows, instead of being written over them and then erased by the next redraw."""
    session = in_terminal("worker_logs.yml")
    assert session.status == 0
    said = {m.group(1) for line in session.screen for m in re.finditer(r"worker-says-(\d+)", line)}
    assert said == {str(n) for n in range(10)}
    assert not any(re.match(LIVE_ROW, line) for line in session.screen), "a live row was left behind"
