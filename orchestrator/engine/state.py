"""What the steps of one run share: executors, limits, pooled clients and the `steps` scope."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from orchestrator.actions.base import Resources, RunEnvironment
from orchestrator.engine.events import Reporter, Reporters
from orchestrator.engine.limits import Limit
from orchestrator.executors.build import Executors
from orchestrator.templates import Unknown

if TYPE_CHECKING:
    from orchestrator.engine.options import RunOptions
    from orchestrator.engine.results import StepResult
    from orchestrator.planner import Plan


class RunState:
    """Owned by one run; created when it starts and closed when it ends."""

    def __init__(self, plan: Plan, run_id: str, options: RunOptions) -> None:
        self.plan = plan
        self.run_id = run_id
        self.options = options
        self.reads_only = options.reads_only
        # With outputs="read", a step whose output no template reads keeps none: a fan-out of
        # 100,000 requests then holds no responses. None: every step keeps its output.
        self.outputs_kept = plan.outputs_read if options.outputs == "read" else None
        self.reporter: Reporter = Reporters(options.reporters) if options.reporters else Reporter()
        self.sleep = options.sleep
        self.env = RunEnvironment(plan.config, options.target, options.sleep, options.clock)
        self.executors = Executors(plan.config, [str(plan.import_path)] if plan.import_path is not None else [])
        self.limits = {name: Limit(name, spec) for name, spec in plan.limits.items()}
        self.resources = Resources()
        self.results: dict[str, StepResult] = {}
        #: Why running steps are being cancelled, when the run knows better than "cancelled".
        self.cancel_reason: str | None = None
        # `steps.<id>` as templates see it; every step is there from the start, so a rollback can
        # read the output of a step that never ran (it is None).
        self.steps_scope: dict[str, dict[str, Any]] = {
            s.id: {"output": None, "status": "pending", "error": None, "attempts": 0} for s in plan.all_steps()
        }
        self._base_scope: dict[str, Any] = {
            **plan.vars,
            "vars": dict(plan.vars),
            "env": dict(os.environ),
            "steps": self.steps_scope,
        }

    def keeps_output(self, step_id: str) -> bool:
        return self.outputs_kept is None or step_id in self.outputs_kept

    def scope(self) -> dict[str, Any]:
        return self._base_scope

    def record(self, result: StepResult) -> None:
        self.results[result.id] = result
        output = Unknown(f"steps.{result.id}.output") if result.status == "planned" else result.output
        self.steps_scope[result.id] = {
            "output": output, "status": result.status, "error": result.error, "attempts": result.attempts,
        }

    async def aclose(self) -> None:
        try:
            await self.resources.aclose()
        finally:
            await self.executors.aclose()
