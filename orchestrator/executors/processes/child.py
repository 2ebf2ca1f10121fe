"""Child side of the process pool: a worker process's loop, running pickled calls one at a time.

Every worker process imports this module when it starts, so it stays import-light:
stdlib plus structlog (for the per-call log context) and, of the project, only
:mod:`orchestrator.lifetime` (stdlib only; the package's ``__init__`` imports the parent side
lazily, for the same reason).

A worker dies with the process that started the pool, even when that process is killed with
SIGKILL: it arms a parent-death signal first thing (:func:`~orchestrator.lifetime.die_with_parent`).
A forkserver worker's parent is the forkserver, which exits when the pool's process does, once
the worker has let go of the descriptor that would keep it running (:func:`_leave_forkserver`).

Protocol, one request and one reply per call, each a single ``send_bytes`` message:

* request: ``pickle((fn, args, kwargs, log_context))``, or :data:`STOP` to exit cleanly;
* reply: ``pickle((OK, result))``, or ``pickle((ERR | FATAL, exc_bytes, type_name, message, tb_text))``.
  The exception travels pickled *inside* the reply so that the parent can fall back to a
  stand-in when it cannot rebuild it. ``FATAL`` means the worker is unusable (its initializer
  failed) and exits after replying.

Before a reply, and whenever a line is complete, the worker may also send ``LOG + text``: what the
worker's code wrote to ``sys.stderr`` (its log lines among it). The parent writes it to its own
``sys.stderr``, so a progress view that owns the terminal, or a test capturing stderr, sees worker
lines as it sees its own instead of having them written over it. (A pickle never starts with LOG.)
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
import pickle
import signal
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any

from structlog.contextvars import bind_contextvars

from orchestrator.lifetime import die_with_parent

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from multiprocessing.connection import Connection

STOP = b""
LOG = b"\x01"
OK = "ok"
ERR = "err"
FATAL = "fatal"

_PROTOCOL = pickle.HIGHEST_PROTOCOL


def main(
    conn: Connection,
    sys_path: Sequence[str],
    initializer: Callable[..., object] | None,
    initargs: tuple[object, ...],
    parent: int | None = None,
) -> None:
    """Worker process entry point: serve requests from ``conn`` until STOP or the parent goes away.

    ``parent`` is the pid the worker was forked by (the pool's process, or the forkserver).
    """
    die_with_parent(parent)
    _leave_forkserver()
    # Ctrl-C reaches the whole foreground process group; the parent handles it by cancelling
    # calls (which terminates the workers running them), so the workers themselves ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # After the installed libraries, as in the parent's run: a stray aiohttp.py beside a playbook
    # must not replace the library for a function that imports it.
    sys.path.extend(p for p in sys_path if p not in sys.path)
    # Replies and stderr lines share the pipe; a call's own threads may write to stderr too.
    send = _locked_sender(conn)
    sys.stderr = ParentStderr(send)
    init_failure: bytes | None = None
    if initializer is not None:
        try:
            initializer(*initargs)
        except Exception as exc:
            # Report it as the answer to the first call instead of dying silently: a bare exit
            # would surface as a confusing "worker died while running <first call>".
            exc.add_note(f"raised by the worker initializer {describe(initializer)}")
            init_failure = _error_reply(FATAL, exc)
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent is gone: nobody to answer to
        if request == STOP:
            return
        if init_failure is not None:
            _reply(send, init_failure)
            return
        _reply(send, execute(request))


def _leave_forkserver() -> None:
    """Close this worker's copy of the forkserver's "alive" descriptor.

    The forkserver hands every child a copy of it and runs until all copies close: with a busy
    worker holding one, a forkserver outlives the pool's process, and the worker outlives the
    forkserver. Without it, the forkserver exits when the pool's process does, and takes this
    worker with it (the parent-death signal). A fork-method worker inherits the pool process's own
    copy, if it has a forkserver, and lets go of it as well.
    """
    forkserver = sys.modules.get("multiprocessing.forkserver")
    server: Any = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.close(fd)
    # Forget the forkserver too: a call that starts processes the forkserver way starts its own.
    server._forkserver_alive_fd = None
    server._forkserver_address = None
    server._forkserver_pid = None


def _reply(send: Callable[[bytes], None], reply: bytes) -> None:
    sys.stderr.flush()  # the call's last lines go first
    send(reply)


def _locked_sender(conn: Connection) -> Callable[[bytes], None]:
    lock = threading.Lock()

    def send(data: bytes) -> None:
        with lock:
            conn.send_bytes(data)

    return send


class ParentStderr(io.TextIOBase):
    """The worker's ``sys.stderr``: complete lines go to the parent (see the module docstring).
    ``fileno()`` is the process's own stderr, for what writes to file descriptors (subprocesses)."""

    encoding = "utf-8"

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send
        self._pending = ""
        self._fd = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
        self.buffer = _BytesToText(self)  # for code that writes bytes to sys.stderr.buffer

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            lines, _, self._pending = self._pending.rpartition("\n")
            self._forward(lines + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            text, self._pending = self._pending, ""
            self._forward(text)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    def _forward(self, text: str) -> None:
        with contextlib.suppress(OSError):  # the parent is gone: nobody is left to read it
            self._send(LOG + text.encode("utf-8", "replace"))


def execute(request: bytes) -> bytes:
    """Run one pickled call and return the pickled reply; never raises an ``Exception``."""
    fn: Callable[..., object] | None = None
    try:
        fn, args, kwargs, log_context = pickle.loads(request)
        # A fresh copy of the context per call: the log context, and whatever the call itself
        # binds, are gone afterwards, while bindings made by the initializer stay.
        result = contextvars.copy_context().run(_invoke, fn, args, kwargs, log_context)
    except Exception as exc:
        # SystemExit is deliberately not caught: sys.exit() in a call ends the worker, and the
        # parent reports that as WorkerDied with the exit code.
        return _error_reply(ERR, exc)
    try:
        return pickle.dumps((OK, result), _PROTOCOL)
    except Exception as exc:
        kind = type(result)
        error = TypeError(
            f"the result of {describe(fn)} cannot be pickled: "
            f"{kind.__module__}.{kind.__qualname__} ({type(exc).__name__}: {exc})"
        )
        return _error_reply(ERR, error)


def _invoke(
    fn: Callable[..., object],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    log_context: Mapping[str, object] | None,
) -> object:
    if log_context:
        bind_contextvars(**log_context)
    return fn(*args, **kwargs)


def _error_reply(tag: str, exc: BaseException) -> bytes:
    tb = exc.__traceback__
    # Drop this module's own frames from the top: the user wants to see their code.
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    tb_text = "".join(traceback.format_exception(type(exc), exc, tb))
    exc_bytes: bytes | None
    try:
        exc_bytes = pickle.dumps(exc, _PROTOCOL)
        # Many exception classes pickle fine but fail to unpickle (a custom __init__ whose
        # arguments differ from .args); find out here, where the fallback is still possible.
        pickle.loads(exc_bytes)
    except Exception:
        exc_bytes = None
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable exception>"
    kind = type(exc)
    return pickle.dumps(
        (tag, exc_bytes, f"{kind.__module__}.{kind.__qualname__}", message, tb_text), _PROTOCOL
    )


def describe(fn: object) -> str:
    """``module:qualname`` of a callable, for error messages."""
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None)
    return f"{module}:{name}" if module and name else repr(fn)


class _BytesToText(io.RawIOBase):
    """``sys.stderr.buffer`` of a worker: bytes written here join the text stream they belong to."""

    def __init__(self, text: ParentStderr) -> None:
        self._text = text

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._text.write(bytes(data).decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self._text.flush()
