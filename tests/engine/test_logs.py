"""Log lines written inside a step's own function carry the run and step, on threads and in processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_cli(playbook: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """`orchestrate PLAYBOOK --format json` in a subprocess, which must succeed: its JSON log
    lines (stderr, not a terminal) and its result (stdout)."""
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", str(playbook), "--format", "json"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "ORCHESTRATOR_HISTORY": "off"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    return lines, json.loads(proc.stdout)


def test_json_logs_from_blocking_and_cpu_functions_carry_run_and_step(tmp_path: Path) -> None:
    """Run the CLI as a subprocess; lines logged in a thread and in a worker process have run_id and step."""
    playbook = tmp_path / "logs.yml"
    playbook.write_text(textwrap.dedent("""
        name: logs
        steps:
          - {id: threaded, kind: blocking, call: 'tests.engine.steps_helpers:log_from_thread', with: {message: hi}}
          - {id: forked, kind: cpu, call: 'tests.engine.steps_helpers:log_from_process', with: {message: hi}}
        """))
    lines, result = run_cli(playbook)
    run_id = result["run_id"]
    threaded = [e for e in lines if e["event"] == "inside.blocking"]
    forked = [e for e in lines if e["event"] == "inside.cpu"]
    assert threaded and forked
    assert threaded[0]["run_id"] == run_id and threaded[0]["step"] == "threaded" and threaded[0]["executor"] == "threads"
    assert forked[0]["run_id"] == run_id and forked[0]["step"] == "forked" and forked[0]["executor"] == "processes"


def test_a_script_that_configures_no_logging_gets_a_clean_stdout_and_failures_on_stderr(tmp_path: Path) -> None:
    """Embedded without any logging set-up, the library writes nothing to stdout (structlog's own
    default would print every info line there), nor do the called functions that log through
    `orchestrator.logs.get_logger`, on a thread or in a worker process; a failed step is reported on
    stderr, as a standard library warning or error is."""
    script = tmp_path / "ops.py"
    script.write_text(textwrap.dedent("""
        import orchestrator

        if __name__ == "__main__":
            result = orchestrator.run(orchestrator.loads('''
            name: embedded
            steps:
              - {id: hello, log: hello}
              - {id: threaded, kind: blocking, call: "tests.engine.steps_helpers:log_from_thread", with: {message: hi}}
              - {id: forked, kind: cpu, call: "tests.engine.steps_helpers:log_from_process", with: {message: hi}}
              - {id: broken, needs: [threaded, forked], shell: {argv: [sh, -c, "exit 3"]}}
            ''', file="embedded.yml"))
            print("STATUS", result.status)
        """))
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "ORCHESTRATOR_HISTORY": "off"},
    )
    assert proc.stdout == "STATUS failed\n"
    assert "step.failed" in proc.stderr and "step='broken'" in proc.stderr
    assert "step.started" not in proc.stderr  # info lines stay below the default WARNING level
    assert "inside." not in proc.stderr


def run_retried_steps(tmp_path: Path) -> list[dict[str, Any]]:
    """The JSON log lines of a run where item 0 of `items` (one worker for both items) and the
    single step `single` each fail once, then succeed."""
    playbook = tmp_path / "retry.yml"
    playbook.write_text(textwrap.dedent(f"""
        name: retried
        steps:
          - id: items
            for_each: [0, 1]
            concurrency: 1
            retry: {{attempts: 2, delay: 0}}
            call: 'tests.engine.steps_helpers:fails_first_for'
            with: {{item: "{{{{ item }}}}", marker: "{tmp_path / 'items'}"}}
          - id: single
            retry: {{attempts: 2, delay: 0}}
            call: 'tests.engine.steps_helpers:fail_once'
            with: {{marker: "{tmp_path / 'single'}"}}
        """))
    lines, _ = run_cli(playbook)
    return lines


def test_a_retried_items_attempt_number_stays_with_that_item(tmp_path: Path) -> None:
    """Item 0 succeeds on its second attempt and logs `attempt: 2`; item 1, run next by the same
    worker, succeeds at once and its line carries no attempt number left over from item 0."""
    inside = {e["item"]: e for e in run_retried_steps(tmp_path) if e["event"] == "inside.item"}
    assert inside[0]["attempt"] == 2 and inside[0]["index"] == 0
    assert "attempt" not in inside[1] and inside[1]["index"] == 1


def test_a_retry_line_names_the_item_of_a_for_each_and_no_item_otherwise(tmp_path: Path) -> None:
    """`step.retry` carries `index` for an item (from the worker's log context) and no `index` key
    at all for a step without for_each, rather than `index: null`."""
    retries = [e for e in run_retried_steps(tmp_path) if e["event"] == "step.retry"]
    assert sorted((e["step"], e.get("index", "absent")) for e in retries) == [("items", 0), ("single", "absent")]
