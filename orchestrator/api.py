"""The Python API: load, plan and run a playbook. The CLI is a client of these functions too.

    plan(path_or_playbook, vars=, config=)  -> Plan        every static problem raised here
    arun(plan_or_path, reporter=, timeout=, ...) -> RunResult   on the running event loop
    run(...)                                 -> RunResult   the same, from synchronous code
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.config import Config, TargetSettings
from orchestrator.engine.options import RunOptions
from orchestrator.engine.runner import execute, new_run_id
from orchestrator.errors import OrchestratorError
from orchestrator.executors.threads import running_blocking_calls
from orchestrator.loader import load
from orchestrator.model.playbook import Playbook
from orchestrator.planner import Plan, build_plan

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
    from types import FrameType

    from orchestrator.actions.registry import ActionRegistry
    from orchestrator.engine.events import Reporter
    from orchestrator.engine.results import RunResult

Target = Plan | Playbook | str | os.PathLike[str]

__all__ = ["Target", "arun", "new_run_id", "plan", "run", "running_blocking_calls"]


def plan(
    target: Playbook | str | os.PathLike[str],
    *,
    vars: Mapping[str, Any] | None = None,
    config: Config | None = None,
    registry: ActionRegistry | None = None,
) -> Plan:
    """Plan a playbook (or the playbook file at a path). Raises PlaybookError on any static problem."""
    playbook = target if isinstance(target, Playbook) else load(target, registry=registry)
    return build_plan(playbook, vars=vars, config=config, registry=registry)


async def arun(
    target: Target,
    *,
    vars: Mapping[str, Any] | None = None,
    config: Config | None = None,
    reporter: Reporter | Sequence[Reporter] | None = None,
    interrupt: asyncio.Event | None = None,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
    clock: Callable[[], float] | None = None,
    run_id: str | None = None,
    settings: TargetSettings | None = None,
    reads_only: bool = False,
    timeout: float | None = None,
    outputs: Literal["all", "read"] = "all",
    secrets: Iterable[str] = (),
) -> RunResult:
    """Run a playbook on the running event loop and return its result. A failed step does not
    raise: check ``result.status`` or call ``result.raise_on_error()``.

    `target` is a Plan, or a Playbook or path that is planned here with `vars` and `config` (a Plan
    has them already: passing them with one is a TypeError). `reporter` is one reporter or several;
    a hook that raises switches off that reporter, never the run. Setting `interrupt` stops the run
    as Ctrl-C does (running steps cancelled, `finally` run, status ``interrupted``). `sleep` and
    `clock` replace the run's waits and time (retry backoff, `wait_until` polls), for tests.
    `settings` says where the target answers (what `embedded_target` yields). `timeout` (seconds;
    else the playbook's `timeout:`) bounds the main steps: when it passes, the steps still running
    are cancelled and the run fails, then `rollback` and `finally` run. With ``outputs="read"`` only
    the steps whose output a template reads keep it in the result (the others' ``output`` is None):
    a wide fan-out then holds no responses in memory. With `reads_only` only steps that change
    nothing run (a dry run that reads); the others end ``planned`` with the request they would send
    in ``StepResult.planned``. `secrets` are values to mask as ``***`` in everything the run emits
    (results, logs, reporters), besides the playbook's `secrets:` and the credentials steps send."""
    refuse_in_worker_import()
    if isinstance(target, Plan):
        given = [name for name, value in (("vars", vars), ("config", config)) if value is not None]
        if given:
            raise TypeError(
                f"arun()/run() got a Plan and {' and '.join(given)}: a Plan is made with its vars and config "
                f"already; pass them to orchestrator.plan(...), or pass the playbook's path here instead"
            )
        the_plan = target
    else:
        the_plan = plan(target, vars=vars, config=config)
    reporters = () if reporter is None else tuple(reporter) if isinstance(reporter, list | tuple) else (reporter,)
    options = RunOptions(
        run_id=run_id, reporters=reporters, interrupt=interrupt, sleep=sleep or asyncio.sleep,
        clock=clock or time.monotonic, target=settings or TargetSettings(), reads_only=reads_only,
        timeout=timeout, outputs=outputs, secrets=tuple(secrets),
    )
    return await execute(the_plan, options)


def run(target: Target, **options: Any) -> RunResult:
    """Run a playbook from synchronous code (starts an event loop). Options as for `arun`."""
    return asyncio.run(arun(target, **options))


def refuse_in_worker_import() -> None:
    """Raise if a worker process is importing the main script and its top-level code called us.

    Worker processes (cpu steps) import the main script, as multiprocessing does, under the name
    ``__mp_main__``. A script that calls `run` at top level, outside ``if __name__ == "__main__":``,
    would run its playbook a second time there: a second deploy, not only a slower one.
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__mp_main__":
            raise OrchestratorError(
                f"{frame.f_code.co_filename}:{frame.f_lineno}: a worker process is importing this script, and its "
                "top-level code runs the playbook again; put that code under `if __name__ == \"__main__\":`"
            )
        frame = frame.f_back
