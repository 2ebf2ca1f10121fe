"""Starting worker processes: off the event loop, one at a time, with the forkserver preloaded."""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import threading
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
# as thread-safe, and processes are started from helper threads: one start at a time.
_START_LOCK = threading.Lock()


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
        # so it runs in a helper thread; the pool's own thread pool would be shared with blocking steps.
        threading.Thread(
            target=self._start_in_thread, args=(loop, done), name="orchestrator-process-start", daemon=True
        ).start()

    def _start_in_thread(
        self, loop: asyncio.AbstractEventLoop, done: Callable[[Started | BaseException], None]
    ) -> None:
        """Helper thread: start one worker process and hand it to the loop."""
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
            process = self._context.Process(
                target=child.main,
                args=(child_conn, self._sys_path, self._initializer, self._initargs),
                name="orchestrator-worker",
                # Daemonic: multiprocessing terminates it at interpreter exit if aclose() never ran.
                daemon=True,
            )
            with _START_LOCK:
                if self.start_method == "forkserver":
                    _preload_in_forkserver()
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
