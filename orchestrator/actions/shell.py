"""`shell`: run a program from an argv list on asyncio's subprocess support. Never through a shell.

Each program runs in a process group of its own: a cancelled step kills the group, and so does the
reaper of `orchestrator.lifetime` when the controller dies (even by SIGKILL) with the program running.

The values of `env` variables whose names look like credentials (``API_TOKEN``, ``DB_PASSWORD``)
join the run's secrets before the program starts, so its output and stderr (in the step's error
when it fails) are masked wherever the run shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import TYPE_CHECKING, Any, ClassVar

from orchestrator.actions.base import Action, PlanContext, Problem, StepContext
from orchestrator.actions.redact import env_secrets
from orchestrator.errors import ActionError
from orchestrator.executors.base import Invocation
from orchestrator.lifetime import program_reaper

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


async def run_program(
    argv: list[str], env: Mapping[str, str] | None, cwd: str | None, stdin: str | None, check: bool
) -> dict[str, Any]:
    # Its group is killed if this process dies before the program ends (orchestrator.lifetime).
    reaper = program_reaper()
    reaper.ready()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **env} if env else None,
            cwd=cwd,
            start_new_session=True,  # its own process group: we decide when it is interrupted
        )
    except FileNotFoundError:
        raise ActionError(f"program not found: {argv[0]!r}", retryable=False) from None
    except PermissionError:
        raise ActionError(f"program not executable: {argv[0]!r}", retryable=False) from None
    reaper.watch(proc.pid)
    try:
        out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    except asyncio.CancelledError:
        # Cancelled (timeout, fail-fast or Ctrl-C): the program must not outlive its step.
        _kill_group(proc.pid)
        await proc.wait()
        raise
    finally:
        reaper.forget(proc.pid)
    result: dict[str, Any] = {"rc": proc.returncode, "stdout": out.decode(errors="replace"), "stderr": err.decode(errors="replace")}
    if check and proc.returncode != 0:
        tail = result["stderr"].strip().splitlines()[-3:]
        raise ActionError(f"{argv[0]} exited with status {proc.returncode}" + (f": {' | '.join(tail)}" if tail else ""))
    return result


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _booleans(argv: Any) -> list[int]:
    return [i for i, a in enumerate(argv) if isinstance(a, bool)] if isinstance(argv, list) else []


class Shell(Action):
    """Run a program with `argv: [..]` (never through a shell); output is {rc, stdout, stderr}."""

    name = "shell"
    params_type: ClassVar[Any] = "orchestrator.actions.params:ShellParams"

    def check(self, params: Any, ctx: PlanContext) -> Sequence[Problem]:
        # YAML reads true/false/yes/no/on/off as booleans: `argv: [true]` would run a program named "True".
        return [
            Problem(("shell", "argv", i), f"argument {i} is the boolean {params['argv'][i]!r}; quote it to pass the word")
            for i in _booleans(params.get("argv"))
        ]

    def secrets(self, params: Any) -> list[str]:
        return env_secrets(params.get("env")) if isinstance(params, dict) else []

    def invocation(self, params: Any, with_: Mapping[str, Any] | None, ctx: StepContext) -> Invocation:
        argv = params["argv"]
        if isinstance(argv, str) or not argv:
            raise ActionError(f"shell.argv: expected a non-empty list of arguments, got {argv!r}", retryable=False)
        env = {str(k): str(v) for k, v in params.get("env", {}).items()}
        if env:
            secrets = ctx.env.secrets
            for value in env_secrets(env):
                secrets.add(value)
        stdin = params.get("stdin")
        return Invocation(
            run_program, ([str(a) for a in argv], env, params.get("cwd"), None if stdin is None else str(stdin), params.get("check", True))
        )
