"""The parent's handle on one worker process: its pipe and its exit, watched by loop readers."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING, cast

from orchestrator.executors.processes.child import LOG, STOP

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

TERM_GRACE = 1.0  # between SIGTERM and SIGKILL
KILL_WAIT = 5.0  # after SIGKILL; only a process stuck in the kernel takes longer
REAP_WAIT = 0.5  # from "its fds are closed" to "it can be reaped": microseconds, normally


class WorkerGone(Exception):
    """The pipe closed or the process exited while a reply was awaited."""


class Worker:
    """One worker process and its pipe, watched by the event loop."""

    def __init__(
        self,
        process: BaseProcess,
        conn: Connection,
        loop: asyncio.AbstractEventLoop,
        on_broken: Callable[[Worker], None],
    ) -> None:
        self.process = process
        self.pid = cast("int", process.pid)
        self.conn = conn
        self.broken = False  # no further requests: the pipe or the process is gone
        self.exited: asyncio.Future[None] = loop.create_future()
        self.reaper: asyncio.Task[int | None] | None = None
        self._loop = loop
        self._on_broken = on_broken
        self._reply: asyncio.Future[bytes] | None = None
        self._conn_fd = conn.fileno()
        self._sentinel = process.sentinel
        self._exitcode: int | None = None
        self._reaped = False
        # Registered once for the worker's lifetime, not per call: no epoll changes on the hot path,
        # and a worker that dies while idle is noticed and dropped from the pool.
        loop.add_reader(self._conn_fd, self._on_readable)
        loop.add_reader(self._sentinel, self._on_exit)
        self._watching_conn = True
        self._watching_exit = True

    def request(self, payload: bytes) -> asyncio.Future[bytes]:
        """Send one call; the returned future gets the reply bytes, or fails with WorkerGone."""
        reply: asyncio.Future[bytes] = self._loop.create_future()
        if self.broken:
            reply.set_exception(WorkerGone())
            return reply
        self._reply = reply
        try:
            self.conn.send_bytes(payload)
        except OSError:
            self._break()  # EPIPE: the process is gone or going; the sentinel tells how
        return reply

    def stop(self) -> None:
        """Ask an idle worker to leave its loop and exit."""
        with contextlib.suppress(OSError):
            self.conn.send_bytes(STOP)

    def terminate(self) -> None:
        if not self.exited.done() and not self._reaped:
            self.process.terminate()

    def kill(self) -> None:
        if not self.exited.done() and not self._reaped:
            self.process.kill()

    async def finish(self, exit_grace: float) -> int | None:
        """Reap the process: ``exit_grace`` s to exit by itself, then SIGTERM, then SIGKILL."""
        try:
            if not await self._wait_exit(exit_grace):
                self.terminate()
                if not await self._wait_exit(TERM_GRACE):
                    self.kill()
                    await self._wait_exit(KILL_WAIT)
        except asyncio.CancelledError:
            self.kill()  # e.g. the loop shutting down: leave no orphan behind
            raise
        finally:
            self._close()
        return self._exitcode

    async def _wait_exit(self, timeout: float) -> bool:
        if not self.exited.done() and timeout > 0:
            # asyncio.wait, unlike wait_for, never cancels the shared `exited` future.
            await asyncio.wait((self.exited,), timeout=timeout)
        return self.exited.done()

    def _on_readable(self) -> None:
        try:
            data = self.conn.recv_bytes()
        except (EOFError, OSError):
            self._break()
            return
        if data[:1] == LOG:  # a line the worker wrote to its stderr: write it to ours
            sys.stderr.write(data[1:].decode("utf-8", "replace"))
            return
        reply, self._reply = self._reply, None
        if reply is None or reply.done():
            # Bytes nobody is waiting for: the protocol is out of step, the worker can't be trusted.
            self._break()
            return
        reply.set_result(data)

    def _on_exit(self) -> None:
        # A reply (and the lines before it) written just before the process exited may still be in
        # the pipe: deliver them first.
        while self._watching_conn and self.conn.poll():
            self._on_readable()
        self._unwatch()
        self._break()
        self.exited.set_result(None)

    def _break(self) -> None:
        if self._watching_conn:
            self._loop.remove_reader(self._conn_fd)
            self._watching_conn = False
        if self.broken:
            return
        self.broken = True
        reply, self._reply = self._reply, None
        if reply is not None and not reply.done():
            reply.set_exception(WorkerGone())
        self._on_broken(self)

    def _unwatch(self) -> None:
        if self._watching_conn:
            self._loop.remove_reader(self._conn_fd)
            self._watching_conn = False
        if self._watching_exit:
            self._loop.remove_reader(self._sentinel)
            self._watching_exit = False

    def _close(self) -> None:
        """Remove the readers (before their fds close), collect the exit code, close everything."""
        if self._reaped:
            return
        self._unwatch()
        self.broken = True
        if self.exited.done():
            # Reads the exit status and drops the process from multiprocessing's children. The
            # sentinel fires as the child's fds close, a moment before the kernel lets a fork/spawn
            # child be reaped, hence a (bounded, in practice microseconds) wait rather than none.
            self.process.join(REAP_WAIT)
            self._exitcode = self.process.exitcode
            if self._exitcode is not None:
                self._reaped = True
                self.process.close()
        self.conn.close()
