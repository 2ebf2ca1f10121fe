"""The embedded default target: a sandbox API (and a local AWS emulator for `aws` steps) that the
CLI starts when a playbook points at the sandbox address, so `orchestrate playbooks/deploy.yml`
needs no set-up. A sandbox that already answers there is used as it is."""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from orchestrator.config import Config


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def embedded_target(vars: Mapping[str, Any], given: set[str], config: Config, *, uses_aws: bool) -> Iterator[dict[str, Any]]:
    """Start what the run needs of the embedded target; yield run settings for it (empty if none).

    The target is wanted when the playbook's `api` is `sandbox.url` and was not set with --var. The
    sandbox starts unless a server already answers there (one started with `orchestrate sandbox`,
    with its own latency and faults, is used as it is). The AWS emulator starts either way when the
    playbook has `aws` steps and no `aws.endpoint_url` is configured, so `aws` steps aimed at the
    embedded target never reach real AWS."""
    url = vars.get("api")
    sandbox = config.sandbox
    wanted = sandbox.enabled and "api" not in given and isinstance(url, str) and url.rstrip("/") == sandbox.url.rstrip("/")
    parts = urlsplit(sandbox.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    running = wanted and _answers(host, port)
    emulate_aws = wanted and uses_aws and sandbox.aws and config.aws.endpoint_url is None
    if not wanted:
        yield {}
        return
    with contextlib.ExitStack() as stack:
        settings: dict[str, Any] = {}
        moto_started: Future[str] | None = None
        if emulate_aws:
            from orchestrator.emulator import MotoProcess

            moto = MotoProcess()
            stack.callback(moto.stop)
            # Started beside the sandbox: the two children start in parallel. Unwinding waits for
            # the start (the pool's exit) before stopping it.
            moto_started = stack.enter_context(ThreadPoolExecutor(1)).submit(moto.start)
        if running:
            print(f"orchestrate: using the sandbox API already answering at {sandbox.url}", file=sys.stderr)
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
            print(f"orchestrate: started the embedded sandbox API at {process.url}", file=sys.stderr)
            settings["sandbox_url"] = process.url
        if moto_started is not None:
            moto_started.result()
            print(f"orchestrate: started the embedded AWS emulator at {moto.url}", file=sys.stderr)
            settings.update(moto.run_settings())
        yield settings
