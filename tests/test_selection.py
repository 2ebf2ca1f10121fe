"""Partial runs: `--only STEP` runs it with what it depends on; `--skip STEP` leaves it out with what
depends on it. The steps left out end `skipped` and the run lists them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import orchestrator
from orchestrator.errors import PlaybookError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

GRAPH = """
    name: graph
    steps:
      - {id: network, set: {id: net-1}}
      - {id: vms, set: {on: "{{ steps.network.output.id }}"}}
      - {id: dns, needs: [vms], set: {a: 1}}
      - {id: bucket, set: {b: 1}}
      - {id: upload, needs: [bucket], set: {c: 1}}
    finally:
      - {id: summary, set: {vms: "{{ steps.vms.output }}"}}
    """


def _ran(result: orchestrator.RunResult) -> list[str]:
    return [s.id for s in result.steps if s.status == "succeeded"]


def test_only_runs_the_step_with_every_step_it_depends_on(write_playbook: Callable[..., Path]) -> None:
    plan = orchestrator.plan(write_playbook(GRAPH), only=["dns"])
    result = orchestrator.run(plan)
    assert result.status == "succeeded"
    assert _ran(result) == ["network", "vms", "dns", "summary"]
    assert result.left_out == ("bucket", "upload")
    assert [result.step(s).status for s in result.left_out] == ["skipped", "skipped"]
    assert result.summary()["left_out"] == ["bucket", "upload"]


def test_skip_leaves_out_the_step_and_every_step_that_depends_on_it(write_playbook: Callable[..., Path]) -> None:
    result = orchestrator.run(orchestrator.plan(write_playbook(GRAPH), skip=["network"]))
    assert _ran(result) == ["bucket", "upload", "summary"]
    assert result.left_out == ("network", "vms", "dns")
    assert result.step("summary").output == {"vms": None}  # finally runs, reading None for what did not


def test_only_and_skip_together_and_a_full_run_lists_nothing(write_playbook: Callable[..., Path]) -> None:
    path = write_playbook(GRAPH)
    both = orchestrator.run(orchestrator.plan(path, only=["dns", "upload"], skip=["bucket"]))
    assert _ran(both) == ["network", "vms", "dns", "summary"]
    full = orchestrator.run(path)
    assert full.left_out == () and "left_out" not in full.summary()


def test_a_name_that_is_not_a_main_step_is_an_error_with_a_suggestion(write_playbook: Callable[..., Path]) -> None:
    path = write_playbook(GRAPH)
    with pytest.raises(PlaybookError) as raised:
        orchestrator.plan(path, only=["dsn"], skip=["summary"])
    messages = [str(d) for d in raised.value.diagnostics]
    assert messages[0].startswith(f"{path}:1:1: --only dsn: not a main step of the playbook") and "'dns'" in messages[0]
    assert "--skip summary: not a main step" in messages[1]


def test_the_cli_runs_part_of_a_playbook_and_says_what_it_left_out(write_playbook: Callable[..., Path]) -> None:
    import json
    import subprocess
    import sys

    path = write_playbook(GRAPH)
    run = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", str(path), "--only", "vms", "--format", "json"],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["left_out"] == ["dns", "bucket", "upload"]
    assert {s["id"]: s["status"] for s in out["steps"]}["dns"] == "skipped"
    text = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", str(path), "--skip", "bucket"], capture_output=True, text=True, timeout=60,
    )
    assert text.returncode == 0 and "left out (--only, --skip): bucket, upload" in text.stdout
    planned = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", str(path), "--skip", "bucket", "--dry-run", "--format", "json"],
        capture_output=True, text=True, timeout=60,
    )
    assert json.loads(planned.stdout)["left_out"] == ["bucket", "upload"]
    wrong = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", str(path), "--only", "nope"], capture_output=True, text=True, timeout=60,
    )
    assert wrong.returncode == 2 and f"{path}:1:1: --only nope: not a main step" in wrong.stderr
