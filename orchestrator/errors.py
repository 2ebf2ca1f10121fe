"""Every error orchestrator raises on purpose, and the exit code each one means.

    OrchestratorError               exit 1
    ├── InvalidInput                exit 2: bad playbook, configuration or usage; carries Diagnostics
    │   ├── PlaybookError
    │   └── ConfigError
    ├── ExecutorUnavailable         exit 1: an executor that cannot serve calls (a closed pool,
    │                               a missing optional extra); an infrastructure fault
    ├── RunFailed                   exit 1 or 130 (orchestrator.engine.results): raise_on_error()
    └── StepError                   exit 1: a step's failure, recorded in its StepResult
        ├── TemplateError           a template that does not render (unknown name, bad expression)
        ├── ActionError             an action that failed (non-zero exit, unexpected HTTP status, ...)
        │   └── AssertionFailed
        ├── StepTimeout             an attempt that ran past its `timeout`
        └── WorkerDied              a worker process that died while running the call

An error whose ``retryable`` is False fails its step at once, whatever the retry policy says. Every
class carries ``exit_code``: what `orchestrate` exits with when this error ends it.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in an input file, located at a line and column (both from 1)."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class OrchestratorError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 1


class InvalidInput(OrchestratorError):
    """Input that cannot run: every problem found, each with its place."""

    exit_code = 2

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(sorted(set(diagnostics)))
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class PlaybookError(InvalidInput):
    """A playbook that does not load or does not plan."""


class ConfigError(InvalidInput):
    """A configuration file or command-line value that is not valid."""


class ExecutorUnavailable(OrchestratorError):
    """An executor that cannot take calls: its pool is closed, or the optional extra it needs is
    not installed. Not the step's own fault, so never retried."""


class StepError(OrchestratorError):
    """A step's failure. ``retryable`` says whether another attempt may succeed."""

    retryable = True
    #: Seconds the server asked us to wait before trying again (HTTP Retry-After), if any.
    retry_after: float | None = None


class TemplateError(StepError):
    """A template that cannot render with the values it was given."""

    retryable = False


class ActionError(StepError):
    """An action that ran and failed."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class AssertionFailed(ActionError):
    """An `assert` step whose condition did not hold."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class StepTimeout(StepError):
    """An attempt that did not finish within the step's `timeout`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"attempt timed out after {seconds:g}s")
        self.seconds = seconds


def describe_exit(exitcode: int | None) -> str:
    """``exit code 3`` / ``killed by signal 9, SIGKILL``, from a multiprocessing exit code."""
    if exitcode is None:
        return "exit status unknown"
    if exitcode >= 0:
        return f"exit code {exitcode}"
    try:
        return f"killed by signal {-exitcode}, {signal.Signals(-exitcode).name}"
    except ValueError:
        return f"killed by signal {-exitcode}"


class WorkerDied(StepError):
    """The worker process running a call exited before replying. Another attempt runs on a new
    worker, so it is retryable."""

    def __init__(self, pid: int, exitcode: int | None, running: str) -> None:
        super().__init__(f"worker process {pid} died ({describe_exit(exitcode)}) while running {running}")
        self.pid = pid
        self.exitcode = exitcode
        self.running = running

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.pid, self.exitcode, self.running))


def describe(exc: BaseException) -> str:
    """A one-line description of an exception for results and logs."""
    if isinstance(exc, StepError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
