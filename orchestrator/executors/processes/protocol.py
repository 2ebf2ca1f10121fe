"""The parent's side of the pickle protocol: a call to request bytes, reply bytes to an outcome.

The messages themselves are described in :mod:`.child`, which holds the other side.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

from orchestrator.executors.processes.child import FATAL, OK, describe

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_PROTOCOL = pickle.HIGHEST_PROTOCOL


class RemoteError(Exception):
    """Stand-in for an exception raised in a worker that could not be pickled back to the parent."""

    def __init__(self, type_name: str, message: str, traceback: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.traceback = traceback

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.type_name, self.message, self.traceback))


def pickle_call(
    fn: Callable[..., object],
    args: tuple[Any, ...],
    kwargs: Mapping[str, object] | None,
    log_context: Mapping[str, object] | None,
) -> bytes:
    """The request for one call; a call that cannot be pickled raises, with a note saying why it must be."""
    try:
        return pickle.dumps(
            (fn, args, dict(kwargs) if kwargs else {}, dict(log_context) if log_context else None), _PROTOCOL
        )
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        exc.add_note(
            f"ProcessPool.call({describe(fn)}): the callable and its arguments are pickled to reach a "
            "worker process, so they must be picklable: a module-level function (no lambda, closure or "
            "nested function) and arguments without locks, sockets or open files"
        )
        raise


def settle(data: bytes, fn: Callable[..., object], pid: int) -> tuple[object, BaseException | None, bool]:
    """Reply bytes from worker ``pid`` as ``(result, raised, reusable)``.

    ``raised`` is the exception to raise in the caller instead of returning ``result`` (a result
    may itself be an exception, hence the separate slot); ``reusable`` is False when the worker
    can serve no further call (it exits by itself after such a reply).
    """
    try:
        reply = pickle.loads(data)
    except Exception as exc:
        # The worker sent a complete, well-formed message: it is fine, only this parent lacks
        # what the result needs (e.g. a class importable in the worker only).
        exc.add_note(f"the reply of {describe(fn)} from worker process {pid} cannot be unpickled here")
        return None, exc, True
    if reply[0] == OK:
        return reply[1], None, True
    return None, rebuild_exception(reply, pid), reply[0] != FATAL


def rebuild_exception(reply: tuple[Any, ...], pid: int) -> BaseException:
    """The exception of an error reply, or a :class:`RemoteError` standing in for it; the
    worker's traceback goes in its notes."""
    _tag, exc_bytes, type_name, message, tb_text = reply
    exc: BaseException | None = None
    if exc_bytes is not None:
        try:
            exc = pickle.loads(exc_bytes)
        except Exception:
            exc = None  # e.g. its class is importable in the worker only
    if not isinstance(exc, BaseException):
        exc = RemoteError(type_name, message, tb_text)
    exc.add_note(f"in worker process {pid}:\n{tb_text.rstrip()}")
    return exc
