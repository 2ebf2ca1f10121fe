"""orchestrator: run infrastructure automation as a dependency graph, each step where its kind of
work belongs: non-blocking I/O on asyncio, blocking calls on threads, CPU work on processes.

    import orchestrator

    result = orchestrator.run("playbooks/deploy.yml", vars={"replicas": 5})
    result.raise_on_error()

The stages are load (YAML to a validated Playbook), plan (everything decided, no side effect) and
run (the only owner of concurrency); `Scheduler` offers the executors to scripts without YAML.
"""

from orchestrator.api import arun, plan, run
from orchestrator.config import Config, load_config
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
from orchestrator.load import load, loads
from orchestrator.model.playbook import Playbook
from orchestrator.plan import Plan, PlannedStep
from orchestrator.scheduler import Scheduler

__version__ = "0.1.0"

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
    "RunFailed",
    "RunResult",
    "Scheduler",
    "StepError",
    "StepResult",
    "arun",
    "load",
    "load_config",
    "loads",
    "plan",
    "run",
]
