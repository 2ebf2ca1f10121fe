"""Structured logs. The library only emits events; `configure` is for programs (the CLI calls it).

Every event carries the context bound with structlog's contextvars: run_id, step, kind, executor,
and index/attempt where they apply. Threads get a copy of the caller's context; worker processes
get it passed with each call, and are configured like the parent through `child_initializer`.
"""

from __future__ import annotations

import functools
import logging
import sys
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import structlog

LOGGER_NAME = "orchestrator"
Format = Literal["console", "json"]


def get_logger(name: str = LOGGER_NAME) -> Any:
    """The library's logger. Once structlog is configured (by `configure`, or by the application),
    events go through structlog as configured. Until then they go to the standard library's logger of
    the same name, so a script that configures nothing sees no info lines on its stdout (structlog's
    own default) and warnings and errors on stderr, as from any library."""
    return _Logger(name)


class _Logger:
    __slots__ = ("_configured", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._configured: Any = None  # structlog's proxy, kept so it can cache its bound logger

    def __getattr__(self, method: str) -> Any:
        if not structlog.is_configured():
            return getattr(_unconfigured(self._name), method)
        if self._configured is None:
            self._configured = structlog.get_logger(self._name)
        return getattr(self._configured, method)


@functools.cache
def _unconfigured(name: str) -> Any:
    return structlog.wrap_logger(
        logging.getLogger(name),
        wrapper_class=structlog.stdlib.BoundLogger,
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
        ],
    )


@dataclass(frozen=True)
class LogSettings:
    """How a program wants its log lines; picklable, so worker processes can be set up the same way."""

    format: Format = "json"
    level: str = "info"
    colors: bool = False


_ACTIVE: LogSettings | None = None


class _CurrentStderr:
    """Whatever `sys.stderr` is when a line is written: structlog loggers keep the stream they were
    built with, and a program (or a test, or a progress view) may replace sys.stderr later."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(settings: LogSettings, stream: TextIO | None = None) -> None:
    """Send structlog events to `stream` (default: the current sys.stderr) as JSON lines or console
    lines, at `level` and above."""
    global _ACTIVE
    _ACTIVE = settings
    renderer: Any
    if settings.format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=settings.colors)
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream if stream is not None else _CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )


def active_settings() -> LogSettings | None:
    """The settings `configure` was last called with in this process, if any."""
    return _ACTIVE


def child_initializer(settings: LogSettings | None) -> None:
    """Run in each worker process: log like the parent, to the child's (inherited) stderr."""
    if settings is not None:
        configure(settings, sys.stderr)
