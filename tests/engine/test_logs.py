"""Log lines written inside a step's own function carry the run and step, on threads and in processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path


def test_json_logs_from_blocking_and_cpu_functions_carry_run_and_step(tmp_path: Path):
    """Run the CLI as a subprocess; lines logged in a thread and in a worker process have run_id and step."""
    playbook = tmp_path / "logs.yml"
    playbook.write_text(textwrap.dedent("""
        name: logs
        steps:
          - {id: threaded, kind: blocking, call: 'tests.engine.steps_helpers:log_from_thread', with: {message: hi}}
          - {id: forked, kind: cpu, call: 'tests.engine.steps_helpers:log_from_process', with: {message: hi}}
        """))
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", str(playbook), "--format", "json"],
        capture_output=True, text=True, timeout=60, cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    run_id = json.loads(proc.stdout)["run_id"]
    threaded = [e for e in lines if e["event"] == "inside.blocking"]
    forked = [e for e in lines if e["event"] == "inside.cpu"]
    assert threaded and forked
    assert threaded[0]["run_id"] == run_id and threaded[0]["step"] == "threaded" and threaded[0]["executor"] == "threads"
    assert forked[0]["run_id"] == run_id and forked[0]["step"] == "forked" and forked[0]["executor"] == "processes"
