"""A server in a child process that announces its URL on its first stdout line.

Shared by the sandbox (`SandboxProcess`) and the AWS emulator (`MotoProcess`): start the child, read
``<PREFIX><url>`` from its stdout, keep draining stdout so the child never blocks on a full pipe,
keep stderr in a file for error messages, and stop it with SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import queue
import subprocess
import tempfile
import threading
from typing import IO, TYPE_CHECKING, ClassVar, Self

from orchestrator.lifetime import program_reaper

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


class ChildServer:
    """Subclasses set `url_prefix` and `what`, and implement `start()` by calling `_launch(argv)`."""

    url_prefix: ClassVar[str]
    what: ClassVar[str]
    start_timeout: ClassVar[float] = 15.0
    stop_grace: ClassVar[float] = 5.0

    def __init__(self) -> None:
        self.url: str | None = None
        self.process: subprocess.Popen[str] | None = None
        self._stderr: IO[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the child, while it runs."""
        return self.process.pid if self.process is not None else None

    def start(self) -> str:
        raise NotImplementedError

    def _launch(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, stdin: bool = False) -> str:
        """Start `argv`, wait for its URL line and return the URL. `stdin=True` keeps a pipe to the
        child's stdin open, so a child that watches it exits when this process dies."""
        if self.process is not None:
            raise RuntimeError(f"{self.what} already started")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - a file cannot fill up like a pipe; closed in stop()
        # In a session of its own, watched by the program reaper: if this process dies, even by
        # SIGKILL, the server dies with it (orchestrator/lifetime.py).
        self.process = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE if stdin else None, stdout=subprocess.PIPE, stderr=self._stderr,
            text=True, env=dict(env) if env is not None else None, start_new_session=True,
        )
        program_reaper().watch(self.process.pid)
        assert self.process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=_pump, args=(self.process.stdout, lines), daemon=True)
        self._reader.start()
        try:
            line = lines.get(timeout=self.start_timeout)
        except queue.Empty:
            line = None
        if line is None or not line.startswith(self.url_prefix):
            stderr = self._read_stderr()
            self.stop()
            raise RuntimeError(f"{self.what} did not report its URL (first line {line!r}); stderr:\n{stderr}")
        self.url = line[len(self.url_prefix):].strip()
        return self.url

    def _read_stderr(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after the grace period) and reap it. Idempotent."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=self.stop_grace)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            program_reaper().forget(process.pid)
            if self._reader is not None:  # it sees EOF now that the child is gone
                self._reader.join(timeout=self.stop_grace)
                self._reader = None
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self.url = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
