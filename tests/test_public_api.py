"""The public API is small, sorted and light to import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import orchestrator


def test_exported_names_are_the_curated_sorted_list() -> None:
    """`orchestrator.__all__` is sorted and names exactly the documented API."""
    assert orchestrator.__all__ == sorted(orchestrator.__all__)
    assert set(orchestrator.__all__) == {
        "Config", "ConfigError", "Diagnostic", "InvalidInput", "OrchestratorError", "Plan", "PlannedStep",
        "Playbook", "PlaybookError", "Reporter", "ResumeRefused", "RunFailed", "RunJournal", "RunResult", "Scheduler",
        "StepError", "StepResult", "SyncScheduler", "TargetSettings", "arun", "embedded_target", "load", "load_config", "loads", "plan",
        "resume", "run",
    }
    assert all(hasattr(orchestrator, name) for name in orchestrator.__all__)


def test_importing_orchestrator_pulls_in_no_cli_and_no_optional_extras() -> None:
    """`import orchestrator` loads neither the CLI nor aiohttp, httpx, boto3 or dask."""
    code = "import sys, json, orchestrator; print(json.dumps(sorted(sys.modules)))"
    modules = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    heavy = [m for m in modules if m.split(".")[0] in {"aiohttp", "httpx", "boto3", "botocore", "dask", "distributed", "moto"}]
    assert heavy == []
    assert not any(m.startswith("orchestrator.cli") or m.startswith("orchestrator.sandbox") for m in modules)


def test_the_api_is_imported_on_first_use_and_the_functions_win_over_module_names() -> None:
    """`import orchestrator` imports none of the API; `orchestrator.plan` and `.load` are the
    functions even after every internal module has been imported."""
    code = (
        "import sys, json, orchestrator; before = sorted(m for m in sys.modules if m.startswith(('orchestrator.', 'pydantic', 'jinja2')));"
        "import orchestrator.planner, orchestrator.loader, orchestrator.api;"
        "print(json.dumps([before, callable(orchestrator.plan), callable(orchestrator.load), orchestrator.Plan.__module__]))"
    )
    before, plan_callable, load_callable, plan_module = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    assert before == []
    assert plan_callable and load_callable
    assert plan_module == "orchestrator.planner"


def test_a_script_without_a_main_guard_runs_its_playbook_once_and_is_told_why(tmp_path: Path) -> None:
    """Worker processes import the main script (as multiprocessing does). Top-level code that runs a
    playbook would run it again in each of them: a second deploy. It is refused there, with the fix."""
    script = tmp_path / "ops.py"
    script.write_text(
        "import orchestrator\n"
        "\n"
        "result = orchestrator.run(orchestrator.loads('''\n"
        "name: unguarded\n"
        "steps:\n"
        "  - {id: forked, kind: cpu, call: 'tests.engine.steps_helpers:burn', with: {ms: 10}}\n"
        "''', file='ops.yml'))\n"
        "print('STATUS', result.status)\n"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "ORCHESTRATOR_HISTORY": "off"},
    )
    assert proc.stdout.count("STATUS") == 1  # the playbook ran in the main process only
    assert f"{script}:3: a worker process is importing this script" in proc.stderr
    assert 'put that code under `if __name__ == "__main__":`' in proc.stderr


def test_running_a_plan_with_vars_or_config_is_a_type_error_not_silently_ignored(tmp_path: Path) -> None:
    """A Plan is made with its vars and config: `run(plan, vars=...)` raises a TypeError saying where
    they go, instead of running the plan with the old values; a path takes them as usual."""
    playbook = tmp_path / "p.yml"
    playbook.write_text("name: p\nvars: {x: 1}\nsteps:\n  - {id: echo, set: '{{ x }}'}\n", encoding="utf-8")
    plan = orchestrator.plan(playbook)
    with pytest.raises(TypeError, match=r"got a Plan and vars: .*orchestrator\.plan\("):
        orchestrator.run(plan, vars={"x": 2})
    with pytest.raises(TypeError, match="got a Plan and config"):
        orchestrator.run(plan, config=orchestrator.load_config())
    assert orchestrator.run(playbook, vars={"x": 2}).step("echo").output == 2
    assert orchestrator.run(orchestrator.plan(playbook, vars={"x": 2})).step("echo").output == 2
