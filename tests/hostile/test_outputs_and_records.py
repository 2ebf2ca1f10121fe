"""Hostile bytes in what orchestrate reads back or writes for other tools: a corrupt history file
is a located error with exit 2, and control bytes in a step's error never reach a CI log raw."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

CORRUPT = {
    "random bytes": b"\x93\x01\xfe" * 1000,
    "an SQLite header over garbage": b"SQLite format 3\x00" + b"\xff" * 200,
    "an empty file": b"",
    "a text file": b"name: not a database\n",
}


def orchestrate(*args: str, history: str = "off") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "ORCHESTRATOR_HISTORY": history},
    )


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
@pytest.mark.parametrize("args", [(), ("20261125T000000-abcdef12",)], ids=["list", "one run"])
def test_a_history_file_that_is_not_ours_is_a_located_error_not_a_traceback(
    tmp_path: Path, content: bytes, args: tuple[str, ...]
) -> None:
    """`orchestrate runs` on a corrupt or foreign history file says which file and what to do, exit 2."""
    history = tmp_path / "runs.sqlite"
    history.write_bytes(content)
    done = orchestrate("runs", *args, "--history", str(history))  # read even with recording off
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"{history}:1:1: cannot read the run history: ")
    assert "move the file aside" in done.stderr


def test_control_bytes_in_a_failed_steps_error_reach_github_annotations_as_text(tmp_path: Path) -> None:
    """A program that writes coloured stderr fails its step; the `::error` line carries `\\x1b`
    as text, so no escape sequence reaches the job log, and the annotation stays one line."""
    playbook = tmp_path / "p.yml"
    script = "import sys; sys.stderr.write('\\x1b[31mboom\\x1b[0m\\x07'); sys.exit(3)"
    playbook.write_text(
        f"name: colours\nsteps:\n  - id: paint\n    shell: {{argv: [{sys.executable!r}, -c, {script!r}]}}\n",
        encoding="utf-8",
    )
    done = orchestrate(str(playbook), "--format", "github")
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("::error")]
    assert errors, done.stdout
    assert all("\x1b" not in line and "\x07" not in line for line in done.stdout.splitlines())
    assert any("\\x1b[31mboom\\x1b[0m\\x07" in line for line in errors), errors
