"""Reporter hooks: how a progress view, a history journal or a test follows a run.

Every hook is optional: a reporter overrides what it needs, the rest do nothing. A run takes one
reporter or several; `Reporters` fans each hook out to those that override it, and guards each
one apart: a hook that raises is logged and switches off that reporter only, never the run.

The items of a `for_each` step are reported two ways. `items_finished` gives the counts so far,
each time the fan-out looks at the clock (about every 2 ms) and once when the items end: what a
progress view needs, at a cost that does not grow with the items. `item_finished` is called for
every item, and only if some reporter defines it (`item_hook`): over a million items, even a call
that does nothing costs a noticeable share of the engine's work per item.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from orchestrator.engine.results import RunResult, StepResult
    from orchestrator.planner import Plan, PlannedStep

HOOKS = (
    "run_started", "step_started", "item_finished", "items_finished", "step_retrying", "step_finished", "run_finished",
)
_HOOK_PREFIXES = ("run_", "step_", "item_", "items_")


class Reporter:
    """Subclass and override what you need; the defaults do nothing. Called on the event loop.

    `items_finished(step, succeeded, failed)` counts a `for_each` step's items finished so far
    (those of a resumed run's record included); `item_finished(step, index, ok)` tells each one.

    A method whose name looks like a hook but is not one (``step_finish``) is a TypeError when the
    subclass is defined: a misspelt hook would otherwise never be called."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in vars(cls).items():
            if callable(value) and name.startswith(_HOOK_PREFIXES) and name not in HOOKS:
                raise TypeError(f"{cls.__qualname__}.{name} is not a reporter hook; the hooks are {', '.join(HOOKS)}")

    def run_started(self, plan: Plan, run_id: str) -> None: ...
    def step_started(self, step: PlannedStep, items: int | None) -> None: ...
    def item_finished(self, step: PlannedStep, index: int, ok: bool) -> None: ...
    def items_finished(self, step: PlannedStep, succeeded: int, failed: int) -> None: ...
    def step_retrying(self, step: PlannedStep, index: int | None, attempt: int, wait: float, error: str) -> None: ...
    def step_finished(self, step: PlannedStep, result: StepResult) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


def _overrides(reporter: Reporter, hook: str) -> bool:
    # Also for an object that is not a Reporter subclass but has some of the hooks.
    return getattr(type(reporter), hook, None) not in (None, getattr(Reporter, hook))


def item_hook(reporter: Reporter) -> Callable[[PlannedStep, int, bool], None] | None:
    """`reporter.item_finished`, or None when calling it would do nothing (no reporter defines it):
    the caller then skips a call per item."""
    hook = reporter.item_finished
    owner = getattr(hook, "__self__", None)
    if getattr(hook, "__func__", None) is Reporter.item_finished:
        return None
    if isinstance(owner, Reporters) and not owner.follows_items:
        return None
    return hook


class Reporters(Reporter):
    """Several reporters as one. Each hook calls, in order, the reporters that override it; the first
    exception a reporter raises is logged and that reporter is switched off for the rest of the run."""

    def __init__(self, reporters: Iterable[Reporter]) -> None:
        self._active = list(reporters)
        self._by_hook: dict[str, tuple[Reporter, ...]] = {}
        self._index()

    def _index(self) -> None:
        # Per hook, only the reporters that implement it: the per-item hook of a wide fan-out then
        # costs nothing for reporters that do not follow items.
        self._by_hook = {hook: tuple(r for r in self._active if _overrides(r, hook)) for hook in HOOKS}

    @property
    def follows_items(self) -> bool:
        """Whether a reporter still on defines `item_finished`."""
        return bool(self._by_hook["item_finished"])

    def _failed(self, reporter: Reporter, hook: str, exc: Exception) -> None:
        from orchestrator.logs import get_logger

        if reporter in self._active:
            self._active.remove(reporter)
            self._index()
        get_logger().warning(
            "reporter.disabled", reporter=type(reporter).__qualname__, hook=hook, error=f"{type(exc).__name__}: {exc}"
        )

    def run_started(self, plan: Plan, run_id: str) -> None:
        for r in self._by_hook["run_started"]:
            try:
                r.run_started(plan, run_id)
            except Exception as exc:
                self._failed(r, "run_started", exc)

    def step_started(self, step: PlannedStep, items: int | None) -> None:
        for r in self._by_hook["step_started"]:
            try:
                r.step_started(step, items)
            except Exception as exc:
                self._failed(r, "step_started", exc)

    def item_finished(self, step: PlannedStep, index: int, ok: bool) -> None:
        for r in self._by_hook["item_finished"]:
            try:
                r.item_finished(step, index, ok)
            except Exception as exc:
                self._failed(r, "item_finished", exc)

    def items_finished(self, step: PlannedStep, succeeded: int, failed: int) -> None:
        for r in self._by_hook["items_finished"]:
            try:
                r.items_finished(step, succeeded, failed)
            except Exception as exc:
                self._failed(r, "items_finished", exc)

    def step_retrying(self, step: PlannedStep, index: int | None, attempt: int, wait: float, error: str) -> None:
        for r in self._by_hook["step_retrying"]:
            try:
                r.step_retrying(step, index, attempt, wait, error)
            except Exception as exc:
                self._failed(r, "step_retrying", exc)

    def step_finished(self, step: PlannedStep, result: StepResult) -> None:
        for r in self._by_hook["step_finished"]:
            try:
                r.step_finished(step, result)
            except Exception as exc:
                self._failed(r, "step_finished", exc)

    def run_finished(self, result: RunResult) -> None:
        for r in self._by_hook["run_finished"]:
            try:
                r.run_finished(result)
            except Exception as exc:
                self._failed(r, "run_finished", exc)
