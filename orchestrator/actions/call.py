"""`call`: a Python callable ``module:function`` with keyword arguments from `with:`.

Planning reads the target from source (`source_check`) and imports nothing: a dry run and
`orchestrate check` run none of the playbook's code. A run imports the module (the playbook's folder
is on `sys.path` then, after the installed modules: `modules.importable`) and checks that what it
imported is what the plan was decided on (`Found.confirm`).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any, ClassVar

from orchestrator.actions.base import Action, PlanContext, Problem, StepContext
from orchestrator.actions.modules import import_from
from orchestrator.actions.source_check import Found, MissingImport, Shadows, find
from orchestrator.executors.base import Invocation
from orchestrator.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path
    from types import ModuleType

    from orchestrator.model.values import Kind


log = get_logger()
#: Where `call:` modules come from: the playbook's folder (the current one for a playbook on stdin).
_IMPORTABLE = "modules in {} are importable, and installed ones"


def resolve(target: str, folder: Path | None = None) -> Callable[..., Any]:
    """Import ``module:function`` (dotted attributes allowed after the colon), the module looked
    up in `folder` (the playbook's) too. This runs the module's code: run time only."""
    return _load(target, folder)[1]


def _load(target: str, folder: Path | None) -> tuple[ModuleType, Callable[..., Any]]:
    module_name, _, attr = target.partition(":")
    module = import_from(module_name, folder) if folder is not None else importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is a {type(obj).__name__}, not a callable")
    return module, obj


class Call(Action):
    """Call a Python function `module:function` with the keyword arguments under `with:`."""

    name = "call"
    params_type: ClassVar[Any] = "orchestrator.actions.params:CallTarget"
    kinds: ClassVar[frozenset[Kind]] = frozenset({"non-blocking", "blocking", "cpu"})
    default_kind: ClassVar[Kind] = "blocking"
    accepts_with = True

    def __init__(self) -> None:
        #: Imported callables (run time), by target.
        self._resolved: dict[str, Callable[..., Any]] = {}
        #: What the last plan read each target to be: what a run's import must agree with.
        self._planned: dict[str, Found] = {}
        #: Targets read from source, by target, folder and sys.path; kept while their files are unchanged.
        self._found: dict[tuple[str, str, tuple[str, ...]], Found] = {}

    def find(self, target: str, folder: Path | None) -> Found:
        """What `target` is, read from source without running it. Raises as `source_check.find`."""
        key = (target, str(folder), tuple(sys.path))
        found = self._found.get(key)
        if found is None or not found.fresh():
            found = self._found[key] = find(target, folder)
        return found

    def _found_quietly(self, target: str, folder: Path) -> Found | None:
        try:
            return self.find(target, folder)
        except Exception:  # `check` reports it
            return None

    def lookup(self, target: str, folder: Path | None = None) -> Callable[..., Any]:
        """The callable `target` names, imported on first use at run time (then cached), and
        checked against what the plan read."""
        fn = self._resolved.get(target)
        if fn is None:
            module, fn = _load(target, folder)
            planned = self._planned.get(target)
            if planned is not None:
                planned.confirm(fn, module)
            self._resolved[target] = fn
        return fn

    def infer_kind(self, params: Any, ctx: PlanContext) -> Kind:
        found = self._found_quietly(params, ctx.base_dir)
        return "non-blocking" if found is not None and found.is_async else "blocking"

    def allowed_kinds(self, params: Any, ctx: PlanContext) -> frozenset[Kind]:
        found = self._found_quietly(params, ctx.base_dir)
        return frozenset({"non-blocking"}) if found is not None and found.is_async else self.kinds

    def check(self, params: Any, ctx: PlanContext) -> Sequence[Problem]:
        try:
            found = self.find(params, ctx.base_dir)
        except Shadows as exc:
            return [Problem(("call",), str(exc))]
        except MissingImport as exc:
            return [Problem(("call",), f"cannot import module {exc.name!r} for {params!r} ({exc.where} imports it); {_IMPORTABLE.format(ctx.base_dir)}")]
        except ModuleNotFoundError as exc:
            return [Problem(("call",), f"cannot import module {exc.name!r} for {params!r}; {_IMPORTABLE.format(ctx.base_dir)}")]
        except AttributeError as exc:
            return [Problem(("call",), f"cannot find {params!r}: {exc}")]
        except Exception as exc:
            return [Problem(("call",), f"cannot load {params!r}: {type(exc).__name__}: {exc}")]
        if found.callable is False:
            return [Problem(("call",), f"cannot load {params!r}: {params} is {found.what}, not a callable")]
        if self._planned.get(params) is not found:  # a new plan of it: the next run imports it afresh
            self._planned[params] = found
            self._resolved.pop(params, None)
        if ctx.executor in ("processes", "dask"):
            if found.is_async:
                return [Problem(("kind",), f"{params} is a coroutine function; it runs on the event loop, not in another process (use kind: non-blocking)")]
            problem = found.pickling_problem()
            if problem is not None:
                return [Problem(("call",), f"{params} cannot be sent to a worker process ({problem}); use a module-level def, not a lambda or closure")]
        if found.unverified:
            log.warning("call.unverified", step=ctx.step_id, target=params, reason=found.unverified,
                        note="planned from what the source says; checked again when a run imports it")
        return ()

    def invocation(self, params: Any, with_: Mapping[str, Any] | None, ctx: StepContext) -> Invocation:
        return Invocation(self.lookup(params), (), with_ or {})

