"""Every CLI run is recorded in a real SQLite file as it goes; `orchestrate runs` reads it back.

A run that fails, is interrupted or is killed leaves a consistent record: the steps that ended, and a
status that says how the run ended (or `abandoned` when its process died without saying).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

from tests.cli.test_cli import PLAYBOOKS, ROOT, _wait_for_event

if TYPE_CHECKING:
    from pathlib import Path


def orchestrate(*args: str, history: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "ORCHESTRATOR_HISTORY": str(history)}, **kwargs,
    )


def runs(history: Path, *args: str) -> Any:
    proc = orchestrate("runs", *args, "--format", "json", history=history)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "play.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_run_is_recorded_with_every_step_and_listed_newest_first(tmp_path: Path) -> None:
    history = tmp_path / "state" / "runs.sqlite"
    ok = write(tmp_path, """
        name: recorded
        steps:
          - {id: one, log: hello}
          - {id: two, needs: [one], sleep: 10ms}
        """)
    assert orchestrate(str(ok), history=history).returncode == 0
    bad = tmp_path / "bad.yml"
    bad.write_text("name: broken\nsteps:\n  - {id: boom, shell: {argv: [sh, -c, 'exit 3']}}\n  - {id: later, needs: [boom], log: x}\n")
    assert orchestrate(str(bad), history=history).returncode == 1

    listed = runs(history)["runs"]
    assert [(r["playbook"], r["status"], r["failed_step"]) for r in listed] == [("broken", "failed", "boom"), ("recorded", "succeeded", None)]
    assert listed[1]["steps"] == listed[1]["steps_ended"] == 2

    shown = runs(history, listed[0]["run_id"][:22])  # a unique prefix is enough
    assert {s["step_id"]: s["status"] for s in shown["steps"]} == {"boom": "failed", "later": "cancelled"}
    assert "exited with status 3" in next(s["error"] for s in shown["steps"] if s["step_id"] == "boom")


def test_an_interrupted_run_records_the_cancelled_step_and_its_finally(tmp_path: Path) -> None:
    history = tmp_path / "runs.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", str(PLAYBOOKS / "interrupt.yml"), "--var", f"marker={tmp_path / 'm'}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "ORCHESTRATOR_HISTORY": str(history)},
    )
    try:
        assert proc.stderr is not None
        _wait_for_event(proc.stderr, "step.started", "long")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    (run,) = runs(history)["runs"]
    assert run["status"] == "interrupted"
    steps = {s["step_id"]: s["status"] for s in runs(history, run["run_id"])["steps"]}
    assert steps == {"long": "cancelled", "after": "cancelled", "mark": "succeeded"}


def test_a_killed_run_keeps_the_steps_that_ended_and_shows_as_abandoned(tmp_path: Path) -> None:
    history = tmp_path / "runs.sqlite"
    play = write(tmp_path, """
        name: killed
        steps:
          - {id: quick, log: done}
          - {id: long, needs: [quick], shell: {argv: [sleep, "30"]}}
        """)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", str(play)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT, env={**os.environ, "ORCHESTRATOR_HISTORY": str(history)},
    )
    try:
        assert proc.stderr is not None
        _wait_for_event(proc.stderr, "step.started", "long")
        proc.kill()  # SIGKILL: no handler, no finally, no last write
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    with sqlite3.connect(history) as db:  # the file itself: consistent, the run still `running`
        assert db.execute("SELECT status FROM runs").fetchall() == [("running",)]
        assert db.execute("SELECT step_id, status FROM steps").fetchall() == [("quick", "succeeded")]
    (run,) = runs(history)["runs"]
    assert (run["status"], run["steps_ended"], run["steps"]) == ("abandoned", 1, 2)


def test_dry_runs_record_nothing_and_an_unwritable_history_does_not_stop_a_run(tmp_path: Path) -> None:
    history = tmp_path / "runs.sqlite"
    play = write(tmp_path, "name: quiet\nsteps:\n  - {id: one, log: hi}\n")
    assert orchestrate("--dry-run", str(play), history=history).returncode == 0
    assert not history.exists()

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    proc = orchestrate(str(play), "--format", "json", history=blocked / "runs.sqlite")  # its folder is a file
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["status"] == "succeeded"
    assert "cannot record the run in" in proc.stderr


def test_history_off_and_an_unknown_run_are_clear_errors(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", "runs"], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "ORCHESTRATOR_HISTORY": "off"},
    )
    assert proc.returncode == 2 and "run history is off" in proc.stderr
    history = tmp_path / "runs.sqlite"
    assert runs(history) == {"history": str(history), "runs": []}
    proc = orchestrate("runs", "nope", history=history)
    assert proc.returncode == 2 and "no single run matches 'nope'" in proc.stderr


def test_the_history_keeps_the_newest_runs_it_is_configured_to_keep(tmp_path: Path) -> None:
    history = tmp_path / "runs.sqlite"
    config = tmp_path / "config.yml"
    config.write_text("history: {keep: 2}\n")
    play = write(tmp_path, "name: kept\nsteps:\n  - {id: one, log: hi}\n")
    for _ in range(3):
        assert orchestrate(str(play), "--config", str(config), history=history).returncode == 0
    listed = runs(history)["runs"]
    assert len(listed) == 2
    with sqlite3.connect(history) as db:  # the oldest run's steps went with it
        kept = {row[0] for row in db.execute("SELECT DISTINCT run_id FROM steps")}
    assert kept == {r["run_id"] for r in listed}


def test_a_second_ctrl_c_records_the_run_as_interrupted_not_abandoned(tmp_path: Path) -> None:
    """Ctrl-C, then Ctrl-C again while `finally` runs: orchestrate exits 130 at once, and the
    history says the run was interrupted (not abandoned, as for a controller that died)."""
    history = tmp_path / "runs.sqlite"
    play = write(tmp_path, """
        name: twice
        steps:
          - {id: long, shell: {argv: [sleep, "30"]}}
        finally:
          - {id: slow_cleanup, shell: {argv: [sleep, "30"]}}
        """)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", str(play)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT, env={**os.environ, "ORCHESTRATOR_HISTORY": str(history)},
    )
    try:
        assert proc.stderr is not None
        _wait_for_event(proc.stderr, "step.started", "long")
        proc.send_signal(signal.SIGINT)
        _wait_for_event(proc.stderr, "step.started", "slow_cleanup")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert code == 130
    (run,) = runs(history)["runs"]
    assert run["status"] == "interrupted"
