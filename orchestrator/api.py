"""The Python API: load, plan and run a playbook. The CLI is a client of these functions too.

    plan(path_or_playbook, vars=, config=)  -> Plan        every static problem raised here
    arun(plan_or_path, reporter=, timeout=, ...) -> RunResult   on the running event loop
    run(...)                                 -> RunResult   the same, from synchronous code
    resume(run_id, ...)                      -> RunResult   continue a recorded run that did not succeed
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from orchestrator.config import Config, TargetSettings
from orchestrator.engine.options import RunOptions
from orchestrator.engine.runner import execute, new_run_id
from orchestrator.errors import OrchestratorError
from orchestrator.executors.threads import running_blocking_calls
from orchestrator.loader import load
from orchestrator.model.playbook import Playbook
from orchestrator.planner import Plan, build_plan

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
    from types import FrameType

    from orchestrator.actions.registry import ActionRegistry
    from orchestrator.engine.events import Reporter
    from orchestrator.engine.results import RunResult
    from orchestrator.history import Resumption

Target = Plan | Playbook | str | os.PathLike[str]
P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["Target", "arun", "new_run_id", "plan", "resume", "run", "running_blocking_calls"]


def plan(
    target: Playbook | str | os.PathLike[str],
    *,
    vars: Mapping[str, Any] | None = None,
    config: Config | None = None,
    registry: ActionRegistry | None = None,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
) -> Plan:
    """Plan a playbook (or the playbook file at a path). Raises PlaybookError on any static problem.
    `only` and `skip` make a partial run: the steps named with their dependencies, less the steps
    named to skip with those that depend on them (see `orchestrator.selection`)."""
    from orchestrator.selection import select

    playbook = target if isinstance(target, Playbook) else load(target, registry=registry)
    return select(build_plan(playbook, vars=vars, config=config, registry=registry), only=only, skip=skip)


async def arun(
    target: Target | None = None,
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
    resume: str | Resumption | None = None,
    force: bool = False,
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
    (results, logs, reporters), besides the playbook's `secrets:` and the credentials steps send.

    `resume` continues a recorded run (by id, or a unique prefix of one) instead of starting one:
    see `resume`. It takes no `target`: the run's own playbook is planned again; `vars` are those
    to give again (the secret ones) or to change, and `force` resumes even if something changed."""
    refuse_in_worker_import()
    reporters = _reporters(reporter)
    point = None
    if resume is not None:
        if target is not None:
            raise TypeError("arun(resume=...) plans the recorded run's own playbook again: pass no target")
        resumption = resume if not isinstance(resume, str) else _prepare(resume, reporters, vars, config, force)
        the_plan, run_id, point = resumption.plan, resumption.run_id, resumption.point
        reporters = _with_journal(reporters, resumption.history)
    elif target is None:
        raise TypeError("arun() needs a target: a Plan, a Playbook or a playbook's path (or resume=RUN_ID)")
    elif isinstance(target, Plan):
        given = [name for name, value in (("vars", vars), ("config", config)) if value is not None]
        if given:
            raise TypeError(
                f"arun()/run() got a Plan and {' and '.join(given)}: a Plan is made with its vars and config "
                f"already; pass them to orchestrator.plan(...), or pass the playbook's path here instead"
            )
        the_plan = target
    else:
        the_plan = plan(target, vars=vars, config=config)
    options = RunOptions(
        run_id=run_id, reporters=reporters, interrupt=interrupt, sleep=sleep or asyncio.sleep,
        clock=clock or time.monotonic, target=settings or TargetSettings(), reads_only=reads_only,
        timeout=timeout, outputs=outputs, secrets=tuple(secrets), resume=point,
    )
    return await execute(the_plan, options)


def _reporters(reporter: Reporter | Sequence[Reporter] | None) -> tuple[Reporter, ...]:
    if reporter is None:
        return ()
    if isinstance(reporter, Sequence):
        return tuple(reporter)
    return (reporter,)


def _prepare(
    run_id: str, reporters: Sequence[Reporter], vars: Mapping[str, Any] | None, config: Config | None, force: bool
) -> Resumption:
    """Claim `run_id` for resuming, from the history file of the journal among `reporters`, else the default one."""
    from orchestrator.history import RunJournal, history_path, prepare_resume

    journal = next((r for r in reporters if isinstance(r, RunJournal)), None)
    path = journal.path if journal is not None else history_path()
    if path is None:
        raise OrchestratorError("cannot resume: the run history is off (ORCHESTRATOR_HISTORY=off); pass a RunJournal")
    return prepare_resume(path, run_id, vars=vars, config=config, force=force)


def _with_journal(reporters: tuple[Reporter, ...], path: os.PathLike[str]) -> tuple[Reporter, ...]:
    """`reporters`, with a journal recording in `path` (the resumed run's own record) if none is there."""
    from orchestrator.history import RunJournal

    if any(isinstance(r, RunJournal) and r.path == path for r in reporters):
        return reporters
    return (*reporters, RunJournal(path))


def _synchronous(coroutine_function: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """`coroutine_function` for synchronous code: the same parameters, run on an event loop of its own."""

    def synchronous(*args: P.args, **kwargs: P.kwargs) -> R:
        return asyncio.run(coroutine_function(*args, **kwargs))

    return synchronous


#: Run a playbook from synchronous code (starts an event loop): `arun`'s parameters, each named.
run = _synchronous(arun)
run.__name__ = run.__qualname__ = "run"
run.__doc__ = "Run a playbook from synchronous code (starts an event loop). Options as for `arun`."


def resume(
    run_id: str,
    *,
    history: str | os.PathLike[str] | None = None,
    vars: Mapping[str, Any] | None = None,
    config: Config | None = None,
    force: bool = False,
    reporter: Reporter | Sequence[Reporter] | None = None,
    settings: TargetSettings | None = None,
    timeout: float | None = None,
    interrupt: asyncio.Event | None = None,
) -> RunResult:
    """Continue a recorded run that failed, was interrupted or whose controller died, under the same
    `run_id` (so every Idempotency-Key is the one its first attempt sent), from synchronous code.

    The run's playbook is planned again with the variables and configuration it was recorded with
    (`vars` gives the secret ones again; `config` replaces the recorded one). Main steps that
    succeeded are not run again: their recorded outputs feed later templates. A `for_each` step runs
    only the items not recorded as succeeded. `rollback` and `finally` run as in any run. Raises
    ResumeRefused (exit code 2) for an unknown id, a succeeded run, a run still running, or a
    playbook, `vars` or `config` that changed since (unless `force`). `history` is the file the run
    is recorded in (default: where the CLI records)."""
    from orchestrator.history import RunJournal

    reporters = _reporters(reporter)
    if history is not None:
        reporters = (*reporters, RunJournal(history))
    return run(
        resume=run_id, vars=vars, config=config, force=force, reporter=reporters, settings=settings,
        timeout=timeout, interrupt=interrupt,
    )


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
