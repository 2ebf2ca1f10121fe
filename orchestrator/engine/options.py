"""`RunOptions`: how one run of a plan is carried out, as opposed to what it runs (the Plan)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.config import TargetSettings

if TYPE_CHECKING:
    from orchestrator.engine.events import Reporter
    from orchestrator.engine.journal import ResumePoint

Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True)
class RunOptions:
    """Everything about one run that is not in its plan. Every field has a default."""

    #: The run's id (in logs, results, the history and every Idempotency-Key); new if None.
    run_id: str | None = None
    #: Who follows the run: one reporter or several, each guarded apart.
    reporters: Sequence[Reporter] = ()
    #: Setting it stops the run as Ctrl-C does.
    interrupt: asyncio.Event | None = None
    #: Waits between attempts and between polls; tests inject one that takes no real time.
    sleep: Sleep = asyncio.sleep
    #: The clock that polls (`wait_until`) measure their timeout with; injected with `sleep`.
    clock: Callable[[], float] = time.monotonic
    #: Where the target answers, when not where the configuration says (`embedded_target`).
    target: TargetSettings = field(default_factory=TargetSettings)
    #: Run only the steps that change nothing; the others end `planned` (``--dry-run=reads``).
    reads_only: bool = False
    #: Seconds bounding the main steps; None: the plan's (the playbook's `timeout:`).
    timeout: float | None = None
    #: ``"read"``: only steps whose output a template reads keep it (a wide fan-out holds nothing).
    outputs: Literal["all", "read"] = "all"
    #: Values to mask (as ``***``) in everything the run emits, besides those the plan marks secret
    #: (`secrets:`) and those its steps send as credentials.
    secrets: Sequence[str] = ()
    #: Continue a recorded run (under the same `run_id`): what its record says was done already.
    resume: ResumePoint | None = None
