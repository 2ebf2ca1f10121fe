"""A user with no home folder (a container's arbitrary UID: no HOME, no password entry) runs
playbooks: the run goes on unrecorded with a warning, the validated cache is off, and the
commands that need the history say what to set instead of a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# As for such a user, `Path.home()` cannot tell the home folder.
_NO_HOME = (
    "import pathlib, sys\n"
    "def home(cls):\n"
    "    raise RuntimeError('Could not determine home directory.')\n"
    "pathlib.Path.home = classmethod(home)\n"
    "from orchestrator.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _orchestrate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "ORCHESTRATOR_HISTORY", "ORCHESTRATOR_CACHE")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-c", _NO_HOME, *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_run_goes_on_unrecorded_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "one.yml").write_text("name: one\nsteps:\n  - id: one\n    set: 1\n")
    done = _orchestrate(tmp_path, "one.yml", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    warnings = [json.loads(line) for line in done.stderr.splitlines() if '"history.unavailable"' in line]
    assert len(warnings) == 1 and "set ORCHESTRATOR_HISTORY=FILE" in warnings[0]["error"]
    assert "Traceback" not in done.stderr


def test_runs_and_resume_say_what_to_set(tmp_path: Path) -> None:
    for args in (["runs"], ["resume", "20261126T100602-9bea71f2"]):
        done = _orchestrate(tmp_path, *args)
        assert done.returncode == 2
        assert "no home folder" in done.stderr and "ORCHESTRATOR_HISTORY=FILE" in done.stderr
        assert "Traceback" not in done.stderr
