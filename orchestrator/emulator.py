"""A local AWS emulator (moto) for tests, benchmarks and the CLI's embedded default target.

- `MotoServer` serves moto from a thread of this process: quick to start, shares state with `moto`
  used in-process, and shares the GIL with the client (so it hides any overlap of client calls).
- `MotoProcess` serves it from a child process (`orchestrator/_moto_serve.py`), so clients and
  server run in parallel: what the CLI and the benchmarks use.

Neither touches ``os.environ``. Whatever talks to the emulator gets dummy credentials explicitly:
`run_settings()` gives the `TargetSettings` the `aws` action reads (``aws_endpoint_url`` and
``aws_credentials``), `environment()` the variables for a child process using boto3's standard chain.

    with MotoProcess() as moto:
        result = orchestrator.run("p.yml", settings=moto.run_settings())
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Self

from orchestrator import _moto_serve
from orchestrator._child_server import ChildServer
from orchestrator.config import TargetSettings

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

URL_PREFIX = _moto_serve.URL_PREFIX
START_TIMEOUT = 30.0  # importing moto takes a second or two; more on a loaded machine
STOP_GRACE = 5.0
REGION = "us-east-1"
#: moto accepts any credentials; boto3 still insists on having some.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class _Emulator:
    url: str | None = None

    def run_settings(self) -> TargetSettings:
        """Target settings pointing `aws` steps at this emulator, with its dummy credentials."""
        if self.url is None:
            raise RuntimeError("the emulator is not running")
        return TargetSettings(aws_endpoint_url=self.url, aws_credentials=dict(CREDENTIALS))

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

        _moto_serve.check_free(self.host, self.port)
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


class MotoProcess(ChildServer, _Emulator):
    """moto's server in a child process. The child also exits when this process dies (it watches its stdin)."""

    url_prefix = URL_PREFIX
    what = "moto process"
    start_timeout = START_TIMEOUT
    stop_grace = STOP_GRACE

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.host = host
        self.port = port

    def start(self) -> str:
        """Start the child, wait until it serves and return its URL."""
        # Run by path, not `-m`, so the child need not import this package; through runpy from `-c`,
        # so this package's folder does not become sys.path[0] (its config.py, errors.py, ... would
        # shadow modules of those names for moto's dependencies).
        argv = [sys.executable, "-c", _LAUNCHER, _moto_serve.__file__,
                "--host", self.host, "--port", str(self.port), "--watch-stdin"]
        return self._launch(argv, stdin=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orchestrator.emulator [--host H] [--port P]``: serve moto until SIGINT or SIGTERM,
    after printing ``MOTO_URL=http://H:PORT`` on stdout."""
    return _moto_serve.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
