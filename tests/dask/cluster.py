"""A Dask cluster as a user starts one: `dask scheduler` and `dask worker` processes on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

DASK = str(Path(sys.executable).with_name("dask"))
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Cluster:
    """A scheduler and its workers, each `dask` command in a process group of its own (a worker's
    nanny and its worker process together), so that killing or stopping one leaves nothing behind."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.scheduler = self._spawn("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1], "--no-dashboard"])
        self.workers: list[subprocess.Popen[bytes]] = []
        self._n = 0

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log: IO[bytes] = (self.folder / f"{name}.log").open("wb")
        # Worker processes must not find the test checkout's playbook modules by accident: the
        # working folder is the cluster's own, so only shipped code is importable there.
        return subprocess.Popen([DASK, *argv], stdout=log, stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True)

    def start_workers(self, n: int) -> None:
        for _ in range(n):
            self._n += 1
            self.workers.append(self._spawn(f"worker{self._n}", [
                "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                "--local-directory", str(self.folder / f"w{self._n}"), "--name", f"w{self._n}",
            ]))

    def wait_for_workers(self, n: int, timeout: float = START_TIMEOUT) -> list[str]:
        """Block until exactly `n` workers are registered; their addresses."""
        from distributed import Client

        deadline = time.monotonic() + timeout
        with Client(self.address, timeout=timeout) as client:  # type: ignore[no-untyped-call]
            while True:
                workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
                if len(workers) == n:
                    return workers
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(workers)} Dask workers after {timeout:g}s, expected {n}; logs in {self.folder}")
                time.sleep(0.2)

    def worker_pids(self) -> set[int]:
        """The pids of the worker processes (the nannies' children)."""
        from distributed import Client

        with Client(self.address, timeout=10) as client:  # type: ignore[no-untyped-call]
            return set(client.run(os.getpid).values())

    def kill_workers(self) -> None:
        """SIGKILL every `dask worker` command, nanny and worker process alike."""
        for worker in self.workers:
            _kill_group(worker)
        self.workers.clear()

    def close(self) -> None:
        self.kill_workers()
        _kill_group(self.scheduler)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
