"""The embedded default target: a sandbox API (and a local AWS emulator for `aws` steps) started
for a run whose playbook points at the sandbox address, so `orchestrate playbooks/deploy.yml`, or
a script's `orchestrator.run`, needs no set-up. A sandbox that already answers there is used as it is.

    plan = orchestrator.plan("playbooks/deploy.yml")
    with orchestrator.embedded_target(plan) as settings:
        result = orchestrator.run(plan, settings=settings)
"""

from __future__ import annotations

import contextlib
import socket
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from orchestrator.config import TargetSettings
from orchestrator.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from orchestrator.planner import Plan

log = get_logger()


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _log(message: str) -> None:
    log.info("embedded_target", message=message)


@contextlib.contextmanager
def embedded_target(
    plan: Plan, *, given: Iterable[str] = (), say: Callable[[str], None] = _log
) -> Iterator[TargetSettings]:
    """Start what `plan` needs of the embedded target for the duration of the block; yield the
    `TargetSettings` to pass to `run`/`arun` as `settings=` (empty when nothing was needed). `say` is told what was started
    or found (the CLI prints it; by default it is logged).

    The target is wanted when the playbook's `api` var is the configured `sandbox.url` and is not
    among the `given` names (the CLI's --var: an `api` set on purpose is used as it is). The
    sandbox starts unless a server already answers there (one started with `orchestrate sandbox`,
    with its own latency and faults, is used as it is). The AWS emulator starts either way when the
    playbook has `aws` steps and no `aws.endpoint_url` is configured, so `aws` steps aimed at the
    embedded target never reach real AWS."""
    url = plan.vars.get("api")
    config = plan.config
    sandbox = config.sandbox
    uses_aws = any(s.action.name == "aws" for s in plan.all_steps())
    if not (sandbox.enabled and "api" not in given and isinstance(url, str) and url.rstrip("/") == sandbox.url.rstrip("/")):
        yield TargetSettings()
        return
    parts = urlsplit(sandbox.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    running = _answers(host, port)
    emulate_aws = uses_aws and sandbox.aws and config.aws.endpoint_url is None
    with contextlib.ExitStack() as stack:
        sandbox_url: str | None = None
        aws = TargetSettings()
        moto_started: Future[str] | None = None
        if emulate_aws:
            from orchestrator.emulator import MotoProcess

            moto = MotoProcess()
            stack.callback(moto.stop)
            # Started beside the sandbox: the two children start in parallel. Unwinding waits for
            # the start (the pool's exit) before stopping it.
            moto_started = stack.enter_context(ThreadPoolExecutor(1)).submit(moto.start)
        if running:
            say(f"using the sandbox API already answering at {sandbox.url}")
        else:
            from orchestrator.sandbox import SandboxProcess
            from orchestrator.sandbox import SandboxSettings as Settings

            process = SandboxProcess(
                Settings(
                    latency=sandbox.latency, fault_rate=sandbox.fault_rate, lost_rate=sandbox.lost_rate,
                    rate_limit=sandbox.rate_limit,
                ), host=host, port=port
            )
            stack.enter_context(process)
            say(f"started the embedded sandbox API at {process.url}")
            sandbox_url = process.url
        if moto_started is not None:
            moto_started.result()
            say(f"started the embedded AWS emulator at {moto.url}")
            aws = moto.run_settings()
        yield replace(aws, sandbox_url=sandbox_url)
