"""The public API is small, sorted and light to import."""

from __future__ import annotations

import json
import subprocess
import sys

import orchestrator


def test_exported_names_are_the_curated_sorted_list():
    """`orchestrator.__all__` is sorted and names exactly the documented API."""
    assert orchestrator.__all__ == sorted(orchestrator.__all__)
    assert set(orchestrator.__all__) == {
        "Config", "ConfigError", "Diagnostic", "InvalidInput", "OrchestratorError", "Plan", "PlannedStep",
        "Playbook", "PlaybookError", "Reporter", "RunFailed", "RunResult", "Scheduler", "StepError",
        "StepResult", "arun", "load", "load_config", "loads", "plan", "run",
    }
    assert all(hasattr(orchestrator, name) for name in orchestrator.__all__)


def test_importing_orchestrator_pulls_in_no_cli_and_no_optional_extras():
    """`import orchestrator` loads neither the CLI nor aiohttp, httpx, boto3 or dask."""
    code = "import sys, json, orchestrator; print(json.dumps(sorted(sys.modules)))"
    modules = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    heavy = [m for m in modules if m.split(".")[0] in {"aiohttp", "httpx", "boto3", "botocore", "dask", "distributed", "moto"}]
    assert heavy == []
    assert not any(m.startswith("orchestrator.cli") or m.startswith("orchestrator.sandbox") for m in modules)


def test_the_api_is_imported_on_first_use_and_the_functions_win_over_module_names():
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
