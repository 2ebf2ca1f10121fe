"""A local AWS emulator (moto) for tests, benchmarks and the CLI's embedded default target.

- `MotoServer` serves moto from a thread of this process: quick to start, shares state with `moto`
  used in-process, and shares the GIL with the client (so it hides any overlap of client calls).
- `MotoProcess` serves it from a child process (``python -m orchestrator.emulator``), so clients and
  server run in parallel: what the CLI and the benchmarks use.

Neither touches ``os.environ``. Whatever talks to the emulator gets dummy credentials explicitly:
`run_settings()` gives the run settings the `aws` action reads (``aws_endpoint_url`` and
``aws_credentials``), `environment()` the variables for a child process using boto3's standard chain.

    with MotoProcess() as moto:
        result = orchestrator.run("p.yml", settings=moto.run_settings())
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any, Self

URL_PREFIX = "MOTO_URL="
START_TIMEOUT = 30.0  # importing moto takes a second or two; more on a loaded machine
STOP_GRACE = 5.0
REGION = "us-east-1"
#: moto accepts any credentials; boto3 still insists on having some.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class _Emulator:
    url: str | None = None

    def run_settings(self) -> dict[str, Any]:
        """Run settings pointing `aws` steps at this emulator, with its dummy credentials."""
        if self.url is None:
            raise RuntimeError("the emulator is not running")
        return {"aws_endpoint_url": self.url, "aws_credentials": dict(CREDENTIALS)}

    def environment(self) -> dict[str, str]:
        """Environment variables for a child process whose boto3 should use this emulator's credentials."""
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _check_free(host: str, port: int) -> None:
    # moto's server thread dies silently on a port in use and its start() then waits forever.
    if port:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))


class MotoServer(_Emulator):
    """moto's server on a thread of this process (`moto.server.ThreadedMotoServer`); port 0 = a free port.
    moto's state is per process: two MotoServers in one process share their buckets."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.url: str | None = None
        self._server: Any = None

    def start(self) -> str:
        """Start serving and return the URL (with the real port)."""
        if self._server is not None:
            raise RuntimeError("moto server already started")
        from moto.server import ThreadedMotoServer

        _check_free(self.host, self.port)
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        self.url = None


_LAUNCHER = "import runpy, sys; runpy.run_path(sys.argv.pop(1), run_name='__main__')"


class MotoProcess(_Emulator):
    """moto's server in a child process. The child also exits when this process dies (it watches its stdin)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.url: str | None = None
        self.process: subprocess.Popen[str] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> str:
        """Start the child, wait until it serves and return its URL."""
        if self.process is not None:
            raise RuntimeError("moto process already started")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - a file cannot fill up like a pipe; closed in stop()
        # This file run as a script, not `-m orchestrator.emulator`: the child need not import the package.
        argv = [sys.executable, "-c", _LAUNCHER, __file__, "--host", self.host, "--port", str(self.port), "--watch-stdin"]
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        line = self._first_line(START_TIMEOUT)
        if not line.startswith(URL_PREFIX):
            stderr = self._read_stderr()
            self.stop()
            raise RuntimeError(f"moto process did not report its URL (got {line!r}); stderr:\n{stderr}")
        self.url = line[len(URL_PREFIX):].strip()
        return self.url

    def _first_line(self, timeout: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        return self.process.stdout.readline() if ready else ""

    def _read_stderr(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self) -> None:
        """Stop the child (SIGTERM, SIGKILL after a grace period) and reap it. Idempotent."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=STOP_GRACE)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self.url = None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orchestrator.emulator [--host H] [--port P]``: serve moto until SIGINT or SIGTERM,
    after printing ``MOTO_URL=http://H:PORT`` on stdout."""
    p = argparse.ArgumentParser(prog="python -m orchestrator.emulator", description="Serve a local AWS emulator (moto).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (see the MOTO_URL= line)")
    p.add_argument("--watch-stdin", action="store_true", help="also exit when stdin closes (the parent died)")
    args = p.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    stop_on = {signal.SIGINT, signal.SIGTERM}
    # Blocked before any thread starts, so every thread inherits the mask and sigwait() receives them.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_on)
    server = MotoServer(args.host, args.port)
    try:
        url = server.start()
    except OSError as exc:
        print(f"cannot serve on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.watch_stdin:
        threading.Thread(target=_exit_on_eof, daemon=True).start()
    print(URL_PREFIX + url, flush=True)
    signal.sigwait(stop_on)
    # The state is in memory and nothing else needs closing; a graceful shutdown would only add
    # werkzeug's 0.5 s poll and the interpreter's teardown of moto's many modules.
    sys.stderr.flush()
    os._exit(0)


def _exit_on_eof() -> None:
    sys.stdin.buffer.read()
    os.kill(os.getpid(), signal.SIGTERM)  # received by the main thread's sigwait


if __name__ == "__main__":
    raise SystemExit(main())
