"""`orchestrate` as scripts and CI see it: exit codes, stdout formats, stderr logs, Ctrl-C.

In-process through `main([...])` where stdout and exit codes are the point; real subprocesses where
the process boundary is (logs on a non-terminal stderr, signals, child processes).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psutil
import pytest

from orchestrator.cli.main import main

PLAYBOOKS = Path(__file__).parent / "playbooks"
ROOT = Path(__file__).resolve().parents[2]
STEP_KEYS = {"id", "kind", "executor", "status", "attempts", "duration_s", "error"}


class _Stderr:
    """What `main` sees as sys.stderr in-process: the current test's capture during a call, and
    whatever sys.stderr is at other times. `logs.configure` hands structlog the sys.stderr of the
    moment, and the engine's loggers keep the stream they first wrote to: without this, a later
    run (here or in another module) would write to this test's closed capture."""

    def __init__(self) -> None:
        self.target: IO[str] | None = None

    def _stream(self) -> IO[str]:
        return self.target if self.target is not None else sys.stderr

    def write(self, text: str) -> int:
        return self._stream().write(text)

    def flush(self) -> None:
        self._stream().flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream(), name)


_STDERR = _Stderr()


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """`run(*argv)` calls `main` in-process and returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("COLUMNS", "160")  # the text table's width, whatever terminal runs the tests

    def call(*argv: str) -> tuple[int, str, str]:
        _STDERR.target, sys.stderr = sys.stderr, _STDERR  # capsys's stream, set once the test runs
        try:
            code = main(list(argv))
        finally:
            sys.stderr, _STDERR.target = _STDERR.target, None
        out, err = capsys.readouterr()
        return code, out, err

    return call


def orchestrate(*argv: str, **options: Any) -> subprocess.CompletedProcess[str]:
    """A real `orchestrate` process with stdout and stderr piped (so neither is a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", *argv], capture_output=True, text=True, timeout=60, cwd=ROOT, **options
    )


def test_passing_playbook_exits_0_and_prints_a_summary(run: Run) -> None:
    """A playbook whose steps all succeed exits 0 and prints every step with its status."""
    code, out, _ = run(str(PLAYBOOKS / "passing.yml"))
    assert code == 0
    assert "passing: succeeded" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert set(rows) >= {"greet", "fan", "check", "bye (finally)"}
    assert all("succeeded" in row for row in rows.values())


def test_failing_playbook_exits_1_and_names_the_failed_step(run: Run) -> None:
    """A failed step exits 1; the summary names it with its error, and what depended on it never started."""
    code, out, _ = run(str(PLAYBOOKS / "failing.yml"), "--format", "json")
    assert code == 1
    result = json.loads(out)
    assert result["status"] == "failed"
    steps = {s["id"]: s for s in result["steps"]}
    assert steps["broken"]["status"] == "failed"
    assert "one is not two" in steps["broken"]["error"]
    assert steps["fine"]["status"] == "succeeded"
    assert steps["after"]["status"] == "cancelled"


def test_failing_playbook_text_names_the_failed_step(run: Run) -> None:
    """In text, the failed step's row says `failed` and carries the error."""
    code, out, _ = run(str(PLAYBOOKS / "failing.yml"))
    assert code == 1
    broken = next(line for line in out.splitlines() if line.startswith("│ broken "))
    assert "failed" in broken and "one is not two" in broken


def test_invalid_playbook_exits_2_with_file_line_col(run: Run) -> None:
    """An unknown key is reported as FILE:LINE:COL: message on stderr, exit 2, no traceback."""
    path = PLAYBOOKS / "invalid.yml"
    code, out, err = run(str(path))
    assert code == 2
    assert err.splitlines()[0].startswith(f"{path}:6:5: ")
    assert "retyr" in err and "Traceback" not in err
    assert out == ""


def test_invalid_playbook_json_lists_the_errors(run: Run) -> None:
    """With --format json an invalid playbook also prints its errors as one JSON object."""
    code, out, _ = run(str(PLAYBOOKS / "invalid.yml"), "--format", "json")
    assert code == 2
    result = json.loads(out)
    assert result["status"] == "invalid"
    assert [(e["line"], e["col"]) for e in result["errors"]] == [(6, 5)]


def test_bad_config_exits_2_with_file_line_col(run: Run) -> None:
    """A bad --config file is located like a bad playbook: FILE:LINE:COL, exit 2."""
    config = PLAYBOOKS / "bad_config.yml"
    code, _, err = run(str(PLAYBOOKS / "passing.yml"), "--config", str(config))
    assert code == 2
    assert err.startswith(f"{config}:4:")
    assert "forks" in err and "Traceback" not in err


def test_var_without_equals_exits_2(run: Run) -> None:
    """`--var replicas` (no '=') is a usage error: exit 2 with a message, nothing run."""
    code, out, err = run(str(PLAYBOOKS / "passing.yml"), "--var", "replicas")
    assert code == 2
    assert "NAME=VALUE" in err and "'replicas'" in err
    assert out == ""


def test_unknown_option_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --format is rejected by the argument parser with exit status 2."""
    with pytest.raises(SystemExit) as exit_:
        main([str(PLAYBOOKS / "passing.yml"), "--format", "xml"])
    assert exit_.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_json_format_has_the_contract_keys(run: Run) -> None:
    """--format json prints exactly one JSON object with the contract's run and step keys."""
    code, out, _ = run(str(PLAYBOOKS / "passing.yml"), "--format", "json")
    assert code == 0
    result = json.loads(out)  # one object: anything else on stdout would fail to parse
    assert {"run_id", "playbook", "status", "duration_s", "steps"} <= set(result)
    assert result["playbook"] == "passing" and result["status"] == "succeeded"
    assert [s["id"] for s in result["steps"]] == ["greet", "fan", "check", "bye"]
    for step in result["steps"]:
        assert set(step) >= STEP_KEYS
        assert step["status"] == "succeeded" and step["error"] is None


def test_var_is_parsed_as_yaml(run: Run) -> None:
    """`--var replicas=3` is the number 3: the fan-out runs 3 items and `replicas is number` holds."""
    code, out, _ = run(str(PLAYBOOKS / "passing.yml"), "--var", "replicas=3", "--format", "json")
    assert code == 0
    steps = {s["id"]: s for s in json.loads(out)["steps"]}
    assert steps["fan"]["items"] == 3
    assert steps["check"]["status"] == "succeeded"


def test_var_at_file_reads_variables_from_yaml_and_later_vars_win(run: Run, tmp_path: Path) -> None:
    """`--var @vars.yml` sets every variable of a YAML mapping (as Ansible's `-e @file`); `--var`
    values are applied in order, so one given after the file overrides it."""
    values = tmp_path / "vars.yml"
    values.write_text("replicas: 4\nunused: [a, b]\n")
    code, out, _ = run(str(PLAYBOOKS / "passing.yml"), "--var", f"@{values}", "--format", "json")
    assert code == 0 and {s["id"]: s for s in json.loads(out)["steps"]}["fan"]["items"] == 4
    code, out, _ = run(str(PLAYBOOKS / "passing.yml"), "--var", f"@{values}", "--var", "replicas=1", "--format", "json")
    assert code == 0 and {s["id"]: s for s in json.loads(out)["steps"]}["fan"]["items"] == 1


@pytest.mark.parametrize(("text", "where", "says"), [
    (None, ":1:1:", "cannot read the variables file"),
    ("replicas: [1, 2\n", ":2:1:", "YAML syntax error"),
    ("- 1\n- 2\n", ":1:1:", "a variables file holds a mapping of NAME: VALUE, got list"),
    ("replicas: 2\nmy-var: 3\n", ":2:1:", "variable names are identifiers, got 'my-var'"),
])
def test_a_bad_variables_file_exits_2_located_in_it(run: Run, tmp_path: Path, text: str | None, where: str, says: str) -> None:
    values = tmp_path / "vars.yml"
    if text is not None:
        values.write_text(text)
    code, out, err = run(str(PLAYBOOKS / "passing.yml"), "--var", f"@{values}")
    assert code == 2 and out == ""
    assert err.startswith(f"{values}{where} ") and says in err, err


def test_timeout_bounds_the_run_and_a_run_past_it_exits_1(run: Run, tmp_path: Path) -> None:
    """`--timeout 300ms` (replacing the playbook's own, if any): the slow step is cancelled and says
    why, the run fails with exit 1 within seconds, and `finally` still runs."""
    playbook = tmp_path / "slow.yml"
    playbook.write_text(
        "name: slow\ntimeout: 1h\nsteps:\n  - id: slow\n    call: tests.engine.steps_helpers:slow\n    with: {seconds: 30}\n"
        "finally:\n  - id: last\n    set: done\n"
    )
    started = time.monotonic()
    code, out, _ = run(str(playbook), "--timeout", "300ms", "--format", "json")
    assert time.monotonic() - started < 10
    assert code == 1
    steps = {s["id"]: s for s in json.loads(out)["steps"]}
    assert steps["slow"]["status"] == "cancelled" and steps["slow"]["error"] == "cancelled: the run's timeout of 0.3s passed"
    assert steps["last"]["status"] == "succeeded"


def test_dry_run_json_plans_and_runs_nothing(run: Run, tmp_path: Path) -> None:
    """--dry-run --format json: status `planned`, kind_source/needs/wave per step, and no side effect."""
    marker = tmp_path / "created"
    code, out, _ = run(str(PLAYBOOKS / "side_effect.yml"), "--dry-run", "--var", f"marker={marker}", "--format", "json")
    assert code == 0
    result = json.loads(out)
    assert result["status"] == "planned"
    steps = {s["id"]: s for s in result["steps"]}
    assert {k: steps["create"][k] for k in ("status", "kind_source", "needs", "wave")} == {
        "status": "planned", "kind_source": "inferred", "needs": [], "wave": 0}
    assert (steps["count"]["kind_source"], steps["count"]["needs"], steps["count"]["wave"]) == ("declared", ["create"], 1)
    assert (steps["report"]["needs"], steps["report"]["wave"]) == (["count"], 2)
    assert not marker.exists()


def test_dry_run_reads_shows_the_shell_step_without_running_it(run: Run, tmp_path: Path) -> None:
    """--dry-run=reads runs the steps that only read; the shell step is shown with its argv, not run."""
    marker = tmp_path / "created"
    code, out, _ = run(str(PLAYBOOKS / "side_effect.yml"), "--dry-run=reads", "--var", f"marker={marker}", "--format", "json")
    assert code == 0
    steps = {s["id"]: s for s in json.loads(out)["steps"]}
    assert steps["create"]["status"] == "planned" and steps["create"]["request"]["argv"] == ["touch", str(marker)]
    assert steps["count"]["status"] == "succeeded"
    assert not marker.exists()


def test_the_same_playbook_run_for_real_has_the_side_effect(run: Run, tmp_path: Path) -> None:
    """The control for the dry run: without --dry-run the shell step does create the file."""
    marker = tmp_path / "created"
    code, _, _ = run(str(PLAYBOOKS / "side_effect.yml"), "--var", f"marker={marker}")
    assert code == 0
    assert marker.exists()


def test_logs_are_json_lines_on_a_non_terminal_stderr() -> None:
    """With stderr piped, every stderr line is a JSON log event, and stdout holds only the result."""
    done = orchestrate(str(PLAYBOOKS / "passing.yml"), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert all("event" in e for e in events)
    names = [e["event"] for e in events]
    assert names[0] == "run.started" and names[-1] == "run.finished"
    assert {"step.started", "step.finished", "playbook.log"} <= set(names)


@pytest.mark.parametrize("playbook", ["passing.yml", "worker_logs.yml"])
def test_json_log_lines_put_time_level_event_and_context_first_in_one_order(playbook: str) -> None:
    """Every JSON log line, the engine's and a worker process's alike, starts `timestamp`, `level`,
    `event`, then the context it has (run, step, kind, executor, index, attempt) in that order."""
    from orchestrator.logs import LEADING_KEYS

    done = orchestrate(str(PLAYBOOKS / playbook), "--format", "json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert any(e.get("step") == "warnings" and "index" in e for e in lines) or playbook == "passing.yml"
    for event in lines:
        keys = list(event)
        assert keys[:3] == ["timestamp", "level", "event"], keys
        leading = [k for k in keys if k in LEADING_KEYS]
        assert keys[: len(leading)] == leading == sorted(leading, key=LEADING_KEYS.index), keys


def test_sigint_cancels_the_running_step_runs_finally_and_exits_130(tmp_path: Path) -> None:
    """Ctrl-C during a long shell step: the step is cancelled, its program killed, `finally` runs,
    the JSON result says `interrupted`, and the exit code is 130 within seconds."""
    marker = tmp_path / "finally-ran"
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", str(PLAYBOOKS / "interrupt.yml"), "--var", f"marker={marker}", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
        _wait_for_event(proc.stderr, "step.started", "long")
        sleeper = _child_named(proc.pid, "sleep")
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        code = proc.wait(timeout=15)
        assert time.monotonic() - started < 10
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 130
    assert marker.exists()
    assert not _alive(sleeper)
    result = json.loads(out)
    assert result["status"] == "interrupted"
    steps = {s["id"]: s for s in result["steps"]}
    assert steps["long"]["status"] == "cancelled" and steps["long"]["error"] == "cancelled: the run was interrupted"
    assert steps["mark"]["status"] == "succeeded"


def test_a_blocking_call_stuck_past_its_timeout_does_not_keep_the_cli_from_exiting(tmp_path: Path) -> None:
    """Python cannot stop a thread, and the interpreter waits for pool threads at exit: a call stuck
    for an hour would hang the CLI after printing its result. It exits at once with the step's
    verdict, and says that a call was left running."""
    (tmp_path / "stuck_tasks.py").write_text("import time\n\ndef stuck():\n    time.sleep(3600)\n")
    playbook = tmp_path / "stuck.yml"
    playbook.write_text("name: stuck\nsteps:\n  - id: stuck\n    kind: blocking\n    call: stuck_tasks:stuck\n    timeout: 0.5s\n")
    started = time.monotonic()
    done = orchestrate(str(playbook), "--format", "json")
    assert time.monotonic() - started < 20
    assert done.returncode == 1
    step = json.loads(done.stdout)["steps"][0]
    assert (step["status"], step["error"]) == ("failed", "attempt timed out after 0.5s")
    assert "orchestrate: 1 blocking call is still running after the step ended; exiting without waiting" in done.stderr


def _wait_for_event(stream: IO[str], event: str, step: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise AssertionError(f"stderr ended before {event} for {step}")
        if not line.startswith("{"):
            continue  # orchestrate's own messages ("orchestrate: interrupting ...") are plain text
        record = json.loads(line)
        if record.get("event") == event and record.get("step") == step:
            return
    raise AssertionError(f"no {event} for {step} within {timeout}s")


def _child_named(pid: int, name: str, timeout: float = 10) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(pid).children(recursive=True):
            if child.name() == name:
                return child
        time.sleep(0.02)  # polling for the program to appear, not waiting for time to pass
    raise AssertionError(f"no {name!r} child of {pid}")


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
