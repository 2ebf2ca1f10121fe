"""Starting worker processes: off the event loop, one at a time, with the forkserver preloaded.

Every start runs on one thread that lives as long as the process. A worker arms a parent-death
signal (:func:`orchestrator.lifetime.die_with_parent`), and the kernel sends it when the *thread*
that forked the worker ends, not the process: a worker forked from a short-lived helper thread
would be killed as soon as that thread returned. (With the forkserver the forking thread is the
forkserver's only one, and this thread starts the forkserver.)
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import threading
import traceback
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, TypeAlias, cast

from orchestrator.executors.processes import child

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Sequence
    from multiprocessing.context import DefaultContext

Started: TypeAlias = tuple[BaseProcess, Connection]

# multiprocessing's bookkeeping (its children set, the forkserver connection) is not documented
# as thread-safe: one start at a time, even when a caller uses Launcher.spawn directly.
_START_LOCK = threading.Lock()


class _StartThread:
    """The process's one thread for starting worker processes: it runs the jobs it is given, in order."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None:
                # Daemonic: it blocks no exit, and ends only with the process itself.
                self._thread = threading.Thread(target=self._serve, name="orchestrator-process-start", daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()  # it reports its outcome to its pool
            except Exception:
                # Should this thread end, the kernel would kill every worker it forked.
                traceback.print_exc()


_STARTER = _StartThread()


def _after_fork_in_child() -> None:
    # A forked child (a fork-method worker is forked from the start thread, holding _START_LOCK)
    # has no copy of the thread, and its locks may be held by it: start afresh.
    global _STARTER, _START_LOCK
    _STARTER = _StartThread()
    _START_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Launcher:
    """Starts the worker processes of one pool: its start method and what each worker is given."""

    def __init__(
        self,
        start_method: str,
        initializer: Callable[..., object] | None,
        initargs: tuple[object, ...],
        sys_path: Sequence[str],
    ) -> None:
        self.start_method = start_method
        # get_context validates the name and starts nothing. Every context has .Process, but
        # typeshed declares it on the concrete subclasses only.
        self._context = cast("DefaultContext", multiprocessing.get_context(start_method))
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._sys_path = tuple(sys_path)

    def start(self, loop: asyncio.AbstractEventLoop, done: Callable[[Started | BaseException], None]) -> None:
        """Start one worker process; ``done`` is then called on ``loop`` with it and its pipe, or
        with the exception that prevented it."""
        # Process.start() blocks, for long when it boots the forkserver (which imports __main__),
        # so it runs on the start thread; the run's thread pool is shared with blocking steps.
        _STARTER.submit(lambda: self._start_in_thread(loop, done))

    def _start_in_thread(
        self, loop: asyncio.AbstractEventLoop, done: Callable[[Started | BaseException], None]
    ) -> None:
        """On the start thread: start one worker process and hand it to the loop."""
        try:
            outcome = self.spawn()
        except BaseException as exc:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                loop.call_soon_threadsafe(done, exc)
            return
        try:
            loop.call_soon_threadsafe(done, outcome)
        except RuntimeError:
            # The loop is closed: nobody is left to adopt the process.
            process, conn = outcome
            process.kill()
            process.join()
            conn.close()

    def spawn(self) -> Started:
        """Start a worker process (blocking) and return it with the parent's end of its pipe."""
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        try:
            with _START_LOCK:
                process = self._context.Process(
                    target=child.main,
                    args=(child_conn, self._sys_path, self._initializer, self._initargs, self._parent()),
                    name="orchestrator-worker",
                    # Daemonic: multiprocessing terminates it at interpreter exit if aclose() never ran.
                    daemon=True,
                )
                process.start()
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            parent_conn.close()
            exc.add_note(
                f"starting a worker process ({self.start_method}): the initializer and initargs are "
                "pickled to reach it, so they must be picklable (a module-level function, no lambda)"
            )
            raise
        except BaseException:
            parent_conn.close()
            raise
        finally:
            # Only the child holds its end now, so the child's death reads as EOF here.
            child_conn.close()
        return process, parent_conn

    def _parent(self) -> int | None:
        """The pid the worker will be forked by: this process, or the forkserver (started now if
        it is not running). None if the forkserver's pid cannot be known."""
        if self.start_method != "forkserver":
            return os.getpid()
        from multiprocessing import forkserver

        _preload_in_forkserver()
        forkserver.ensure_running()
        pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
        return pid if isinstance(pid, int) else None


def _preload_in_forkserver() -> None:
    """Have the forkserver import the worker module (and structlog) once, not every worker.

    That saves ~0.15 s per worker start. Effective only before the forkserver first starts;
    added to, not replacing, what the application asked to preload.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    preload = list(getattr(server, "_preload_modules", ["__main__"]))
    if child.__name__ not in preload:
        forkserver.set_forkserver_preload([*preload, child.__name__])
