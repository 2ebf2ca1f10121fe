"""`orchestrate ... | head`: a reader that leaves early ends the command quietly, exit status 0,
for the run and for every subcommand alike. Real shell pipes, real processes."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORCHESTRATE = f"{shlex.quote(sys.executable)} -m orchestrator.cli.main"


def shell(pipeline: str) -> subprocess.CompletedProcess[str]:
    """`pipeline` in bash with pipefail: its status is the first failing command's, so an
    `orchestrate` that exits non-zero fails it even when `head` succeeds."""
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipeline], cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("attempt", range(3))
def test_schema_piped_to_head_exits_0_without_a_traceback(attempt: int) -> None:
    """`orchestrate schema | head -1` prints the first line; orchestrate exits 0 and says nothing.
    (Whether head leaves before the schema is written is up to the scheduler: three attempts.)"""
    done = shell(f"{ORCHESTRATE} schema | head -1")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "{\n"
    assert done.stderr == ""


def test_a_reader_gone_before_anything_is_written_is_no_error() -> None:
    """`orchestrate schema | true`: the reader has left before the first write."""
    done = shell(f"{ORCHESTRATE} schema | true")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def test_a_run_whose_output_outgrows_the_pipe_exits_with_its_own_status(tmp_path: Path) -> None:
    """A run printing more than a pipe holds, read by `head -1`: the run's status (0), and no
    traceback (its JSON logs on stderr are all that stderr holds)."""
    steps = "".join(f"  - id: s{i}\n    set: {i}\n" for i in range(1500))
    playbook = tmp_path / "wide.yml"
    playbook.write_text(f"name: wide\nsteps:\n{steps}", encoding="utf-8")
    done = shell(f"{ORCHESTRATE} {shlex.quote(str(playbook))} --format json --log-level warning | head -1")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "{\n"
    assert done.stderr == ""
