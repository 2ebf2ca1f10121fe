"""Structured logs. The library only emits events; `configure` is for programs (the CLI calls it).

Every event carries the context bound with structlog's contextvars: run_id, step, kind, executor,
and index/attempt where they apply. Threads get a copy of the caller's context; worker processes
get it passed with each call, and are configured like the parent through `child_initializer`.

Secrets are masked by value, as a CI system masks its logs: a run keeps its secret values in a
`Secrets` set, and the `mask_secrets` processor replaces each of them with ``***`` in every line,
in this process and, since the set travels with the log context of each call, in worker processes.
Values shorter than `MIN_SECRET_LENGTH` characters are never masked (they would hide ordinary
words and numbers everywhere).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TextIO
from urllib.parse import quote

import structlog

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, MutableMapping

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
            mask_secrets,
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


def wants_colour(stream: object) -> bool:
    """Whether what is written to `stream` should be coloured: when it is a terminal, unless the
    user says otherwise. `NO_COLOR` set to anything but the empty string (https://no-color.org) or
    `TERM=dumb` means no colours; `FORCE_COLOR` (likewise) means colours even on a pipe."""
    if _no_colour():
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty()) and os.environ.get("TERM") != "dumb"


def _no_colour() -> bool:
    return bool(os.environ.get("NO_COLOR"))


def configure(settings: LogSettings, stream: TextIO | None = None) -> None:
    """Send structlog events to `stream` (default: the current sys.stderr) as JSON lines or console
    lines, at `level` and above. Console lines are coloured if `settings.colors` says so and
    `NO_COLOR` does not say otherwise (see `wants_colour`)."""
    global _ACTIVE
    _ACTIVE = settings
    renderer: Any
    if settings.format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=settings.colors and not _no_colour())
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_secrets,
            *((leading_keys_first,) if settings.format == "json" else ()),
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


# --- secrets, masked by value -------------------------------------------------------------------

MASK = "***"
#: Shorter values are not secrets worth masking: masking "ok" or "42" would hide them everywhere.
MIN_SECRET_LENGTH = 4
#: The log-context key under which a run's `Secrets` travel to worker processes with each call.
SECRETS_KEY = "orchestrator_secrets"
_SCALARS = (int, float)


class Secrets:
    """The secret values of one run. `mask` replaces every one of them in a text with ``***``.

    Each value is also kept as it looks JSON-escaped and percent-encoded (a server that echoes it in
    JSON or in a URL). Adding is safe from any thread. An empty set masks at the cost of one test.
    Its repr shows how many values it holds, never them, and it pickles to its values (what a
    worker process receives with a call's log context)."""

    __slots__ = ("_ordered", "_values")

    def __init__(self, values: Iterable[Any] = ()) -> None:
        self._values: set[str] = set()
        self._ordered: tuple[str, ...] = ()
        for value in values:
            self.add_all(value)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __repr__(self) -> str:
        return f"<secrets: {len(self._values)} values>"

    def __reduce__(self) -> tuple[Callable[[tuple[str, ...]], Secrets], tuple[tuple[str, ...]]]:
        return _restored, (tuple(self._values),)

    def add(self, value: str) -> bool:
        """Mask `value` from now on (with its encoded forms); False if it is too short or known."""
        if type(value) is not str or len(value) < MIN_SECRET_LENGTH or value in self._values:
            return False
        forms = {value, json.dumps(value)[1:-1], quote(value, safe="")}
        self._values |= forms
        self._ordered = ()  # sorted again on the next mask
        return True

    def add_all(self, value: Any) -> None:
        """Every string (and number) in `value`, however nested in mappings and sequences."""
        if isinstance(value, str):
            self.add(value)
        elif isinstance(value, _SCALARS) and not isinstance(value, bool):
            self.add(str(value))
        elif isinstance(value, dict):
            for v in value.values():
                self.add_all(v)
        elif isinstance(value, list | tuple | set | frozenset):
            for v in value:
                self.add_all(v)

    def _sorted(self) -> tuple[str, ...]:
        ordered = self._ordered
        if len(ordered) != len(self._values):
            # Longest first, so a secret that contains another is masked whole. (tuple() of a set
            # runs without releasing the GIL: another thread adding meanwhile cannot break it.)
            ordered = self._ordered = tuple(sorted(tuple(self._values), key=len, reverse=True))
        return ordered

    def mask(self, text: str) -> str:
        """`text` with every secret value replaced by ``***``."""
        if not self._values or not text:
            return text
        for secret in self._sorted():
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def mask_value(self, value: Any) -> Any:
        """A copy of `value` (mappings, sequences, strings, numbers) with every secret masked; other
        objects are replaced by their masked text when their text shows a secret."""
        if not self._values:
            return value
        if isinstance(value, str):
            return self.mask(value)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, _SCALARS):
            return MASK if str(value) in self._values else value
        if isinstance(value, dict):
            return {(self.mask(k) if isinstance(k, str) else k): self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_value(v) for v in value]
        text = str(value)
        masked = self.mask(text)
        return value if masked == text else masked


def _restored(values: tuple[str, ...]) -> Secrets:
    """A set unpickled: its values (encoded forms included) as they were, not derived again."""
    secrets = Secrets()
    secrets._values.update(values)
    return secrets


#: The secrets of the runs going on in this process (replaced, never mutated: threads read it).
_LIVE: tuple[Secrets, ...] = ()


def watch(secrets: Secrets) -> None:
    """Mask `secrets` in every log line this process writes, until `unwatch`."""
    global _LIVE
    if not any(s is secrets for s in _LIVE):
        _LIVE = (*_LIVE, secrets)


def unwatch(secrets: Secrets) -> None:
    global _LIVE
    _LIVE = tuple(s for s in _LIVE if s is not secrets)


def ships_secrets() -> bool:
    """Whether a run's secrets may be bound to the log context (under `SECRETS_KEY`) for worker
    processes: only when `configure` set up this process's logs, so the processor that takes the
    key out of each line (`mask_secrets`) is there, in this process and in the workers."""
    return _ACTIVE is not None


#: The first keys of a JSON log line, in this order where present; the event's own fields follow.
LEADING_KEYS = ("timestamp", "level", "event", "run_id", "step", "kind", "executor", "index", "attempt", "worker")


def leading_keys_first(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the context and the event's name in one order on every line (the run's
    context comes from context variables, which keep no order), so a reader finds them in place and
    two runs' logs diff line by line."""
    ordered = {key: event_dict.pop(key) for key in LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def mask_secrets(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: every secret value of the runs going on (or, in a worker process, of
    the run whose call this is) replaced by ``***`` in every value of the line."""
    shipped = event_dict.pop(SECRETS_KEY, None)
    live = _LIVE
    if isinstance(shipped, Secrets) and not any(s is shipped for s in live):
        live = (*live, shipped)
    for secrets in live:
        if secrets:
            for key, value in event_dict.items():
                event_dict[key] = secrets.mask_value(value)
    return event_dict
