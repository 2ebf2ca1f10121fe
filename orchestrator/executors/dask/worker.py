"""What runs on a Dask worker: one call with its log context, log lines sent home, shipped code.

Each call travels as a `Payload` and runs through `run_call`, in a fresh copy of the context with
the run's log context bound (run_id, step, kind, index, attempt) plus ``worker``, the worker's
address. While it runs, what it logs does not go to the worker's own log: structlog events and
standard-library log records are sent to the client as Dask events on the run's topic
(``worker.log_event``, the mechanism of Dask's own ``Client.forward_logging``). They travel on the
worker's batched stream ahead of the message that says the call finished, so the client writes a
call's lines before it sees the call's result. Lines logged outside a call (the worker's own) are
left alone. Text printed to stdout or stderr stays in the worker's output.

`CodePlugin` puts the modules shipped from the playbook's folder on the worker's ``sys.path``.
Every name here is imported by reference on the workers, so orchestrator must be installed there.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import io
import logging
import pickle
import sys
import threading
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, MutableMapping

_TARGET: contextvars.ContextVar[tuple[Any, str] | None] = contextvars.ContextVar("orchestrator_dask_target", default=None)
_SETUP_LOCK = threading.Lock()
_set_up = False


class Payload:
    """One call as it travels: one opaque object, so Dask does not walk its arguments for keys."""

    __slots__ = ("args", "context", "fn", "key", "kwargs", "topic")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], context: Mapping[str, Any], topic: str, key: str,
    ) -> None:
        self.key = key
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.context = context
        self.topic = topic

    def __reduce__(self) -> tuple[Any, ...]:
        return (Payload, (self.fn, self.args, dict(self.kwargs), dict(self.context), self.topic, self.key))


def run_call(data: bytes) -> Any:
    """The task every call runs as: the call, its log lines forwarded to the client's topic.

    The call arrives pickled, as bytes: Dask's scheduler unpickles the task graph it receives, and it
    cannot import the playbook's modules (only the workers get them), nor should it need to."""
    worker = get_worker()
    if not _set_up:
        _set_up_logging()
    payload = pickle.loads(data)
    # The client fails a call whose worker dies only once it has started here; one that was merely
    # queued on that worker is run elsewhere by Dask, as if nothing happened.
    worker.log_event(payload.topic, {"started": payload.key})
    return contextvars.copy_context().run(_invoke, worker, payload)


def _invoke(worker: Any, payload: Payload) -> Any:
    _TARGET.set((worker, payload.topic))
    structlog.contextvars.bind_contextvars(**payload.context, worker=worker.address)
    return payload.fn(*payload.args, **payload.kwargs)


def _set_up_logging() -> None:
    """Once per worker process: structlog events and log records of calls go to the client."""
    global _set_up
    with _SETUP_LOCK:
        if _set_up:
            return
        if structlog.is_configured():
            processors = list(structlog.get_config()["processors"])
            if structlog.contextvars.merge_contextvars not in processors:
                processors.insert(0, structlog.contextvars.merge_contextvars)
            processors.insert(len(processors) - 1, forward_event)  # before the renderer
            structlog.configure(processors=processors)
        else:
            structlog.configure(
                processors=[
                    structlog.contextvars.merge_contextvars,
                    structlog.processors.format_exc_info,
                    forward_event,
                    structlog.processors.JSONRenderer(),
                ],
                logger_factory=structlog.PrintLoggerFactory(sys.stderr),
                cache_logger_on_first_use=True,
            )
        logging.getLogger().addHandler(_ForwardHandler())
        _set_up = True


def forward_event(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: inside a call, send the event to the client instead of rendering it here."""
    target = _TARGET.get()
    if target is None:
        return event_dict
    worker, topic = target
    worker.log_event(topic, {"level": method, "fields": plain(event_dict)})
    raise structlog.DropEvent


class _ForwardHandler(logging.Handler):
    """Standard-library log records of a call (at the levels its loggers let through)."""

    def emit(self, record: logging.LogRecord) -> None:
        target = _TARGET.get()
        if target is None or record.name.startswith(("distributed", "tornado", "asyncio")):
            return
        worker, topic = target
        fields: dict[str, Any] = {"event": record.getMessage(), "logger": record.name}
        if record.exc_info:
            fields["exception"] = logging.Formatter().formatException(record.exc_info)
        fields.update(plain(dict(structlog.contextvars.get_contextvars())))
        worker.log_event(topic, {"level": record.levelname.lower(), "fields": fields})


def plain(value: Any) -> Any:
    """`value` as msgpack can carry it (what an event must be): other objects become their repr."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items() if k != "orchestrator_secrets"}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return repr(value)


#: The folders `CodePlugin` put on this worker's sys.path, with the module names each provides.
_SHIPPED: dict[str, frozenset[str]] = {}


class CodePlugin(WorkerPlugin):
    """Unpacks a playbook's modules into the worker's local directory and puts them at the end of
    ``sys.path`` (after the installed libraries, as in a local run). Named by the content's key and
    idempotent: registering the same content again does nothing. A newer version of the same modules
    replaces the older one on ``sys.path``, and their imported copies are dropped so the next call
    imports the new code."""

    idempotent = True

    def __init__(self, key: str, data: bytes, modules: tuple[str, ...]) -> None:
        self.key = key
        self.data = data
        self.modules = modules
        self.name = f"orchestrator-code-{key}"

    def setup(self, worker: Any) -> None:
        target = Path(worker.local_directory) / "orchestrator-code" / self.key
        if not target.is_dir():
            partial = target.with_name(f"{self.key}.partial")
            with zipfile.ZipFile(io.BytesIO(self.data)) as archive:
                archive.extractall(partial)
            with contextlib.suppress(OSError):  # another worker of the same folder won: same content
                partial.rename(target)
        names = frozenset(self.modules)
        for entry, provides in list(_SHIPPED.items()):
            if entry != str(target) and provides & names:
                with contextlib.suppress(ValueError):
                    sys.path.remove(entry)
                del _SHIPPED[entry]
        for name in list(sys.modules):
            if name.partition(".")[0] in names:
                del sys.modules[name]
        if str(target) not in sys.path:
            sys.path.append(str(target))
        _SHIPPED[str(target)] = names
        importlib.invalidate_caches()
