"""`call`: a Python callable ``module:function`` with keyword arguments from `with:`."""

from __future__ import annotations

import inspect
import pickle
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field

from orchestrator.actions.base import Action, PlanContext, Problem, StepContext
from orchestrator.actions.modules import import_from
from orchestrator.executors.base import Invocation

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from orchestrator.model.values import Kind

Target = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$", description="module:function")]


def resolve(target: str, folder: Path | None = None) -> Callable[..., Any]:
    """Import ``module:function`` (dotted attributes allowed after the colon), the module looked
    up in `folder` (the playbook's) first."""
    module_name, _, attr = target.partition(":")
    obj: Any = import_from(module_name, folder)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is a {type(obj).__name__}, not a callable")
    return obj  # type: ignore[no-any-return]


def _is_async(fn: Callable[..., Any]) -> bool:
    # an instance whose __call__ is a coroutine function counts too
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


class Call(Action):
    """Call a Python function `module:function` with the keyword arguments under `with:`."""

    name = "call"
    params_type: ClassVar[Any] = Target
    kinds: ClassVar[frozenset[Kind]] = frozenset({"non-blocking", "blocking", "cpu"})
    default_kind: ClassVar[Kind] = "blocking"
    accepts_with = True

    def __init__(self) -> None:
        self._resolved: dict[str, Callable[..., Any]] = {}

    def _target(self, target: str, folder: Path) -> Callable[..., Any] | None:
        try:
            return self.lookup(target, folder)
        except Exception:
            return None

    def lookup(self, target: str, folder: Path | None = None) -> Callable[..., Any]:
        """The callable `target` names; imported once (when the plan checks the step), then cached."""
        fn = self._resolved.get(target)
        if fn is None:
            fn = self._resolved[target] = resolve(target, folder)
        return fn

    def infer_kind(self, params: Any, ctx: PlanContext) -> Kind:
        fn = self._target(params, ctx.base_dir)
        return "non-blocking" if fn is not None and _is_async(fn) else "blocking"

    def allowed_kinds(self, params: Any, ctx: PlanContext) -> frozenset[Kind]:
        fn = self._target(params, ctx.base_dir)
        return frozenset({"non-blocking"}) if fn is not None and _is_async(fn) else self.kinds

    def check(self, params: Any, ctx: PlanContext) -> Sequence[Problem]:
        try:
            fn = self.lookup(params, ctx.base_dir)
        except ModuleNotFoundError as exc:
            return [Problem(("call",), f"cannot import module {exc.name!r} for {params!r}; modules beside the playbook are importable")]
        except AttributeError as exc:
            return [Problem(("call",), f"cannot find {params!r}: {exc}")]
        except Exception as exc:
            return [Problem(("call",), f"cannot load {params!r}: {type(exc).__name__}: {exc}")]
        if ctx.executor in ("processes", "dask"):
            if _is_async(fn):
                return [Problem(("kind",), f"{params} is a coroutine function; it runs on the event loop, not in another process (use kind: non-blocking)")]
            try:
                pickle.dumps(fn)
            except Exception as exc:
                return [Problem(("call",), f"{params} cannot be sent to a worker process ({type(exc).__name__}: {exc}); use a module-level def, not a lambda or closure")]
        return ()

    def invocation(self, params: Any, with_: Mapping[str, Any] | None, ctx: StepContext) -> Invocation:
        return Invocation(self.lookup(params), (), with_ or {})
