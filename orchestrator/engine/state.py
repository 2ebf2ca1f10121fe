"""What the steps of one run share: executors, limits, pooled clients, the `steps` scope, secrets.

The run's `Secrets` start with the plan's (the `secrets:` variables' values, the credentials steps
carry as written) and grow as steps send credentials (actions add them through ``ctx.env.secrets``;
a step a dry run only shows adds those of its rendered request). Every result is masked with them
when it is recorded, so the run's result, its output in every format and the history show none;
reporters see only masked results and errors; log lines are masked by `orchestrator.logs`, in
worker processes too (the set travels with each call's log context).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from structlog.contextvars import bind_contextvars, unbind_contextvars

from orchestrator.actions.base import Action, Resources, RunEnvironment
from orchestrator.engine.events import Reporter, Reporters
from orchestrator.engine.journal import Journal, ResumePoint
from orchestrator.engine.limits import Limit
from orchestrator.engine.timeline import Timeline
from orchestrator.engine.timeline import enabled as timeline_enabled
from orchestrator.executors.build import Executors
from orchestrator.logs import SECRETS_KEY, Secrets, ships_secrets, unwatch, watch
from orchestrator.templates import Unknown

if TYPE_CHECKING:
    from orchestrator.engine.options import RunOptions
    from orchestrator.engine.results import RunResult, StepResult
    from orchestrator.planner import Plan, PlannedStep

#: A dry run shows the requests of the first items of a `for_each` step (as `StepRunner.would_send`).
_SHOWN_ITEMS = 20


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
        self.secrets: Secrets = plan.secrets()
        for value in options.secrets:
            self.secrets.add(value)
        self.reporter: Reporter = _Masking(Reporters(options.reporters) if options.reporters else Reporter(), self.secrets)
        #: The reporter that also records items as they finish, if one follows the run.
        self.journal: Journal | None = next((r for r in options.reporters if isinstance(r, Journal)), None)
        #: Of a resumed run: what was done already.
        self.resume = options.resume or ResumePoint()
        self.sleep = options.sleep
        self.env = RunEnvironment(
            plan.config, options.target, options.sleep, options.clock, self.secrets, self.resume.generation
        )
        self.executors = Executors(plan.config, [str(plan.import_path)] if plan.import_path is not None else [])
        self.limits = {name: Limit(name, spec) for name, spec in plan.limits.items()}
        self.resources = Resources()
        self.results: dict[str, StepResult] = {}
        #: Where and when work ran (`engine/timeline.py`); None when `ORCHESTRATOR_TIMELINE=off`.
        self.timeline: Timeline | None = Timeline() if timeline_enabled() else None
        #: Adds to a `time.perf_counter()` time to make it Unix time (steps' `started_at`, `ended_at`).
        self.epoch = self.timeline.epoch if self.timeline is not None else time.time() - time.perf_counter()
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

    def records_output(self, step_id: str) -> bool:
        """Whether a journal records the step's output: only when a template may read it."""
        read = self.plan.outputs_read
        return read is None or step_id in read

    def scope(self) -> dict[str, Any]:
        return self._base_scope

    def record(self, result: StepResult) -> None:
        """Keep a step's result, with the run's secrets masked in its error and planned request."""
        if result.status == "planned":
            self._see_planned(result.id)
        if self.secrets:
            result = result.masked(self.secrets)
        self.results[result.id] = result
        output = Unknown(f"steps.{result.id}.output") if result.status == "planned" else result.output
        self.steps_scope[result.id] = {
            "output": output, "status": result.status, "error": result.error, "attempts": result.attempts,
        }

    def _see_planned(self, step_id: str) -> None:
        """Add the credentials of the request(s) a dry run shows for a step it did not run (its
        shell `env`, its headers), rendered again here, so its `argv` or body shows them masked."""
        step = self.plan.step(step_id)
        if type(step.action).secrets is Action.secrets:  # the action knows of no credential
            return
        scope = self._base_scope
        try:
            if step.for_each is None:
                found = list(step.action.secrets(step.params.render(scope)))
            else:
                source = step.for_each.render(scope)
                if isinstance(source, Unknown):
                    return
                found = [
                    value
                    for index, item in zip(range(_SHOWN_ITEMS), source, strict=False)
                    for value in step.action.secrets(step.params.render({**scope, "item": item, "index": index}))
                ]
        except Exception:  # not renderable in a dry run: the step shows "not rendered", not a request
            return
        for value in found:
            self.secrets.add(value)

    async def aclose(self) -> None:
        try:
            await self.resources.aclose()
        finally:
            unwatch(self.secrets)
            await self.executors.aclose()


class _Masking(Reporter):
    """The run's reporters as one, shown results and errors with the run's secrets masked.

    While the run goes on, its secrets are bound to the log context (when `orchestrator.logs`
    configured this process), so calls sent to worker processes carry them and their log lines are
    masked there too. `run_started` and `run_finished` are called in the run's own context."""

    def __init__(self, inner: Reporter, secrets: Secrets) -> None:
        self._inner = inner
        self._secrets = secrets
        self._bound = False
        # Called per item, or carrying nothing secret: straight to the reporters, at no cost.
        self.item_finished = inner.item_finished  # type: ignore[method-assign]
        self.items_finished = inner.items_finished  # type: ignore[method-assign]
        self.step_started = inner.step_started  # type: ignore[method-assign]

    def run_started(self, plan: Plan, run_id: str) -> None:
        watch(self._secrets)  # until `RunState.aclose`: this process's log lines are masked with them
        if ships_secrets():
            bind_contextvars(**{SECRETS_KEY: self._secrets})
            self._bound = True
        self._inner.run_started(plan, run_id)

    def step_retrying(self, step: PlannedStep, index: int | None, attempt: int, wait: float, error: str) -> None:
        self._inner.step_retrying(step, index, attempt, wait, self._secrets.mask(error))

    def step_finished(self, step: PlannedStep, result: StepResult) -> None:
        self._inner.step_finished(step, result.masked(self._secrets))

    def run_finished(self, result: RunResult) -> None:
        try:
            self._inner.run_finished(result.masked(self._secrets))
        finally:
            if self._bound:
                self._bound = False
                unbind_contextvars(SECRETS_KEY)
