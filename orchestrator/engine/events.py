"""Reporter hooks: how a progress view or a test follows a run. Every method is optional."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.engine.results import RunResult, StepResult
    from orchestrator.planner import Plan, PlannedStep


class Reporter:
    """Subclass and override what you need; the defaults do nothing. Called on the event loop."""

    def run_started(self, plan: Plan, run_id: str) -> None: ...
    def step_started(self, step: PlannedStep, items: int | None) -> None: ...
    def item_finished(self, step: PlannedStep, index: int, ok: bool) -> None: ...
    def step_retrying(self, step: PlannedStep, index: int | None, attempt: int, wait: float, error: str) -> None: ...
    def step_finished(self, step: PlannedStep, result: StepResult) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


class Guarded(Reporter):
    """A reporter whose failure cannot end a run: the first exception from a hook is logged and the
    reporter is switched off."""

    def __init__(self, inner: Reporter) -> None:
        self._inner: Reporter | None = inner

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_"):
            return object.__getattribute__(self, name)

        def call(*args: Any) -> None:
            inner = object.__getattribute__(self, "_inner")
            if inner is None:
                return
            try:
                getattr(inner, name)(*args)
            except Exception as exc:
                object.__setattr__(self, "_inner", None)
                from orchestrator.logs import get_logger

                get_logger().warning("reporter.disabled", hook=name, error=f"{type(exc).__name__}: {exc}")

        return call


class Reporters(Reporter):
    """Several reporters as one."""

    def __init__(self, reporters: list[Reporter]) -> None:
        self.reporters = reporters

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") or name == "reporters":
            return object.__getattribute__(self, name)
        hooks = [getattr(r, name) for r in object.__getattribute__(self, "reporters")]

        def call(*args: Any) -> None:
            for hook in hooks:
                hook(*args)

        return call
