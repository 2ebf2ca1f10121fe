"""`NO_COLOR` (https://no-color.org): on a terminal, log lines and the summary carry no colour
when it is set, and do when it is not. Run under a real pseudo-terminal (pexpect)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pexpect

from orchestrator.logs import wants_colour

if TYPE_CHECKING:
    import pytest

PLAYBOOKS = Path(__file__).parent / "playbooks"
ROOT = Path(__file__).resolve().parents[2]
#: A Select Graphic Rendition sequence: colours, bold, dim, reset.
SGR = re.compile(rb"\x1b\[[0-9;]*m")


def in_terminal(**env: str) -> bytes:
    """Everything `orchestrate passing.yml --no-progress` writes to a terminal (stdout and stderr:
    console logs at info level, then the summary), with `env` added to a colour terminal's."""
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    child: pexpect.spawn[bytes] = pexpect.spawn(
        sys.executable, ["-m", "orchestrator.cli.main", str(PLAYBOOKS / "passing.yml"), "--no-progress"],
        cwd=str(ROOT), env={**base, "TERM": "xterm-256color", **env}, dimensions=(40, 160), timeout=60,
    )
    out = child.read()
    child.close()
    assert child.exitstatus == 0, out.decode(errors="replace")
    return out


def test_no_color_leaves_logs_and_summary_plain_on_a_terminal() -> None:
    """With NO_COLOR=1 the console log lines and the table hold no escape sequence for colour or
    style; without it, the same run on the same terminal is coloured."""
    plain = in_terminal(NO_COLOR="1")
    assert b"run.started" in plain and b"passing: succeeded" in plain
    assert SGR.findall(plain) == []
    coloured = in_terminal()
    assert b"run.started" in coloured
    assert SGR.search(coloured)


class _Terminal:
    def isatty(self) -> bool:
        return True


class _Pipe:
    def isatty(self) -> bool:
        return False


def test_colour_follows_the_terminal_and_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal is coloured unless NO_COLOR (non-empty) or TERM=dumb; FORCE_COLOR colours a pipe."""
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    assert wants_colour(_Terminal()) and not wants_colour(_Pipe())
    monkeypatch.setenv("NO_COLOR", "")
    assert wants_colour(_Terminal())  # empty: as if unset
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_colour(_Terminal())
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not wants_colour(_Pipe())  # NO_COLOR wins
    monkeypatch.delenv("NO_COLOR")
    assert wants_colour(_Pipe())
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not wants_colour(_Terminal())
