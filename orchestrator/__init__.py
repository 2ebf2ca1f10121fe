"""orchestrator: run infrastructure automation as a dependency graph, each step where its kind of
work belongs: non-blocking I/O on asyncio, blocking calls on threads, CPU work on processes.

    import orchestrator

    plan = orchestrator.plan("playbooks/deploy.yml", vars={"replicas": 5})
    with orchestrator.embedded_target(plan) as target:  # the sandbox API it points at, if not running
        result = orchestrator.run(plan, settings=target)
    result.raise_on_error()

The stages are load (YAML to a validated Playbook), plan (everything decided, no side effect) and
run (the only owner of concurrency); `Scheduler` offers the executors to scripts without YAML.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.api import arun, plan, resume, run
    from orchestrator.config import Config, TargetSettings, load_config
    from orchestrator.engine.events import Reporter
    from orchestrator.engine.results import RunFailed, RunResult, StepResult
    from orchestrator.errors import (
        ConfigError,
        Diagnostic,
        InvalidInput,
        OrchestratorError,
        PlaybookError,
        StepError,
    )
    from orchestrator.history import ResumeRefused, RunJournal
    from orchestrator.loader import load, loads
    from orchestrator.model.playbook import Playbook
    from orchestrator.planner import Plan, PlannedStep
    from orchestrator.scheduler import Scheduler, SyncScheduler
    from orchestrator.target import embedded_target

__version__ = "0.1.0"

# Imported on first use: a process that needs only a part (the sandbox's child, a worker process
# unpickling a task) does not pay for the whole API (pydantic, Jinja, rich), about half a second.
_EXPORTS = {
    "arun": "orchestrator.api",
    "plan": "orchestrator.api",
    "run": "orchestrator.api",
    "resume": "orchestrator.api",
    "ResumeRefused": "orchestrator.history",
    "RunJournal": "orchestrator.history",
    "Config": "orchestrator.config",
    "load_config": "orchestrator.config",
    "Reporter": "orchestrator.engine.events",
    "RunFailed": "orchestrator.engine.results",
    "RunResult": "orchestrator.engine.results",
    "StepResult": "orchestrator.engine.results",
    "TargetSettings": "orchestrator.config",
    "ConfigError": "orchestrator.errors",
    "Diagnostic": "orchestrator.errors",
    "InvalidInput": "orchestrator.errors",
    "OrchestratorError": "orchestrator.errors",
    "PlaybookError": "orchestrator.errors",
    "StepError": "orchestrator.errors",
    "load": "orchestrator.loader",
    "loads": "orchestrator.loader",
    "Playbook": "orchestrator.model.playbook",
    "Plan": "orchestrator.planner",
    "PlannedStep": "orchestrator.planner",
    "Scheduler": "orchestrator.scheduler",
    "SyncScheduler": "orchestrator.scheduler",
    "embedded_target": "orchestrator.target",
}

__all__ = [
    "Config",
    "ConfigError",
    "Diagnostic",
    "InvalidInput",
    "OrchestratorError",
    "Plan",
    "PlannedStep",
    "Playbook",
    "PlaybookError",
    "Reporter",
    "ResumeRefused",
    "RunFailed",
    "RunJournal",
    "RunResult",
    "Scheduler",
    "StepError",
    "StepResult",
    "SyncScheduler",
    "TargetSettings",
    "arun",
    "embedded_target",
    "load",
    "load_config",
    "loads",
    "plan",
    "resume",
    "run",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
