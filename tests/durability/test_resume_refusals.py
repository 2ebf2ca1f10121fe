"""`orchestrate resume` refuses, with exit 2 and the reason, what it cannot continue: an unknown id,
a run that succeeded, a playbook, variable or configuration changed since, a secret not given again,
a run still running. And it continues the others under the same run id."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING

from tests.durability.cli_runs import (
    ROOT,
    env_for,
    kill_and_check_nothing_survives,
    orchestrate,
    start,
    wait_for,
    wait_for_program,
)

if TYPE_CHECKING:
    from pathlib import Path

# Fails until the file `go` exists beside it: a run that fails, then can be resumed unchanged.
PLAYBOOK = """
    name: refusals
    vars: {n: 3, token: "x"}
    secrets: [token]
    steps:
      - id: made
        set: {value: "{{ n * 2 }}"}
      - id: gate
        needs: [made]
        shell: {argv: [test, -e, go], cwd: "{{ folder }}"}
      - id: after
        needs: [gate]
        set: {made: "{{ steps.made.output.value }}"}
    """


def _failed_run(tmp_path: Path, *extra: str) -> tuple[str, Path, dict[str, str]]:
    play = tmp_path / "play.yml"
    play.write_text(textwrap.dedent(PLAYBOOK))
    env = env_for(tmp_path / "runs.sqlite")
    proc = orchestrate(str(play), "--var", f"folder={tmp_path}", *extra, "--format", "json", env=env)
    assert proc.returncode == 1, proc.stderr
    return json.loads(proc.stdout)["run_id"], play, env


def test_a_failed_run_resumes_under_its_id_without_running_what_succeeded(tmp_path: Path) -> None:
    run_id, _, env = _failed_run(tmp_path)
    listed = json.loads(orchestrate("runs", "--format", "json", env=env).stdout)["runs"]
    assert [(r["run_id"], r["status"], r["resumable"]) for r in listed] == [(run_id, "failed", True)]
    (tmp_path / "go").touch()
    proc = orchestrate("resume", run_id[:12], "--format", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["run_id"] == run_id and out["status"] == "succeeded"
    steps = {s["id"]: s for s in out["steps"]}
    assert steps["made"].get("resumed") is True
    assert "resumed" not in steps["gate"] and "resumed" not in steps["after"]
    listed = json.loads(orchestrate("runs", "--format", "json", env=env).stdout)["runs"]
    assert [(r["status"], r["starts"], r["resumable"]) for r in listed] == [("succeeded", 2, False)]


def test_an_unknown_id_and_a_succeeded_run_are_refused(tmp_path: Path) -> None:
    run_id, _, env = _failed_run(tmp_path)
    unknown = orchestrate("resume", "19990101T000000-00000000", env=env)
    assert unknown.returncode == 2 and "no single run matches '19990101T000000-00000000'" in unknown.stderr
    (tmp_path / "go").touch()
    assert orchestrate("resume", run_id, "--format", "json", env=env).returncode == 0
    again = orchestrate("resume", run_id, env=env)
    assert again.returncode == 2
    assert f"run {run_id} succeeded: there is nothing to resume" in again.stderr
    assert "Traceback" not in unknown.stderr + again.stderr


def test_a_changed_playbook_or_variable_is_refused_naming_it_unless_forced(tmp_path: Path) -> None:
    run_id, play, env = _failed_run(tmp_path)
    changed_var = orchestrate("resume", run_id, "--var", "n=4", env=env)
    assert changed_var.returncode == 2 and "--var n differ(s) from the run's" in changed_var.stderr
    play.write_text(play.read_text().replace("n * 2", "n * 3"))
    changed = orchestrate("resume", run_id, env=env)
    assert changed.returncode == 2
    assert f"the playbook {play.resolve()} changed since the run started" in changed.stderr and "--force" in changed.stderr
    (tmp_path / "go").touch()
    forced = orchestrate("resume", run_id, "--force", "--format", "json", env=env)
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["status"] == "succeeded"


def test_a_changed_configuration_is_refused_naming_the_keys(tmp_path: Path) -> None:
    run_id, _, env = _failed_run(tmp_path)
    config = tmp_path / "config.yml"
    default = (ROOT / "config" / "default.yml").read_text()
    assert "workers: 32" in default
    config.write_text(default.replace("workers: 32", "workers: 3"))  # the configuration the run had, but one key
    proc = orchestrate("resume", run_id, "--config", str(config), env=env)
    assert proc.returncode == 2
    assert "the configuration differs (executors.blocking.workers)" in proc.stderr


def test_a_secret_variable_is_not_recorded_and_must_be_given_again(tmp_path: Path) -> None:
    run_id, _, env = _failed_run(tmp_path, "--var", "token=s3cr3t-value")
    assert b"s3cr3t-value" not in (tmp_path / "runs.sqlite").read_bytes()
    missing = orchestrate("resume", run_id, env=env)
    assert missing.returncode == 2
    assert "secret variable(s) token, whose values are not recorded: give them again (--var token=...)" in missing.stderr
    (tmp_path / "go").touch()
    given = orchestrate("resume", run_id, "--var", "token=s3cr3t-value", "--format", "json", env=env)
    assert given.returncode == 0, given.stderr


def test_a_run_still_running_is_refused_and_a_killed_one_is_resumable(tmp_path: Path) -> None:
    play = tmp_path / "slow.yml"
    play.write_text(textwrap.dedent("""
        name: slow
        steps:
          - {id: first, set: {a: 1}}
          - {id: wait, needs: [first], shell: {argv: [sleep, "30"]}}
        """))
    env = env_for(tmp_path / "runs.sqlite")
    log = tmp_path / "run.log"
    proc = start(str(play), env=env, log=log)
    try:
        run_id = wait_for(log, proc, "step.started", step="wait")["run_id"]
        wait_for_program(proc, "sleep")
        alive = orchestrate("resume", run_id, env=env)
        assert alive.returncode == 2
        assert f"run {run_id} is still running" in alive.stderr
    finally:
        kill_and_check_nothing_survives(proc)
    listed = json.loads(orchestrate("runs", "--format", "json", env=env).stdout)["runs"]
    assert [(r["status"], r["resumable"]) for r in listed] == [("abandoned", True)]
    play.write_text(play.read_text())  # the same text: not a change
    resumed = start("resume", run_id, env=env, log=tmp_path / "resume.log")
    try:
        wait_for(tmp_path / "resume.log", resumed, "step.resumed", step="first")
        wait_for(tmp_path / "resume.log", resumed, "step.started", step="wait")
        wait_for_program(resumed, "sleep")
    finally:
        kill_and_check_nothing_survives(resumed)


def test_with_history_off_resume_says_so(tmp_path: Path) -> None:
    proc = orchestrate("resume", "20260101T000000-abcdef12", env=env_for(tmp_path / "x", ORCHESTRATOR_HISTORY="off"))
    assert proc.returncode == 2 and "the run history is off" in proc.stderr


def test_a_run_against_the_embedded_sandbox_is_refused_for_its_state_ended_with_it(tmp_path: Path) -> None:
    """The embedded sandbox lives as long as the run it was started for: a resume would meet a new,
    empty one, so it is refused (saying how to get a run that can be resumed) unless forced."""
    play = tmp_path / "embedded.yml"
    play.write_text(textwrap.dedent("""
        name: embedded
        vars: {api: "http://127.0.0.1:8700"}
        steps:
          - {id: look, http: {method: GET, url: "{{ api }}/v1/vms"}}
          - {id: fail, needs: [look], assert: {that: "false"}}
        """))
    env = env_for(tmp_path / "runs.sqlite")
    first = orchestrate(str(play), "--format", "json", env=env)
    assert first.returncode == 1, first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    refused = orchestrate("resume", run_id, env=env)
    assert refused.returncode == 2
    assert "it ran against the embedded sandbox started for it, which ended with it" in refused.stderr
    assert "orchestrate sandbox" in refused.stderr
    forced = orchestrate("resume", run_id, "--force", "--format", "json", env=env)
    assert forced.returncode == 1 and json.loads(forced.stdout)["steps"][0].get("resumed") is True
