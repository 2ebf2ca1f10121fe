"""The AWS emulator's child process: serve moto until SIGINT, SIGTERM or (optionally) EOF on stdin.

Run as a script by `orchestrator.emulator.MotoProcess`, so it imports nothing from this package (the
package's API would add a second to every start). Prints ``MOTO_URL=http://HOST:PORT`` once serving.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

URL_PREFIX = "MOTO_URL="


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m orchestrator.emulator", description="Serve a local AWS emulator (moto).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (see the MOTO_URL= line)")
    p.add_argument("--watch-stdin", action="store_true", help="also exit when stdin closes (the parent died)")
    args = p.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    stop_on = {signal.SIGINT, signal.SIGTERM}
    # Blocked before any thread starts, so every thread inherits the mask and sigwait() receives them.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_on)
    from moto.server import ThreadedMotoServer

    try:
        check_free(args.host, args.port)
    except OSError as exc:
        print(f"cannot serve on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    if args.watch_stdin:
        threading.Thread(target=_exit_on_eof, daemon=True).start()
    print(f"{URL_PREFIX}http://{host}:{port}", flush=True)
    signal.sigwait(stop_on)
    # The state is in memory and nothing else needs closing; a graceful shutdown would only add
    # werkzeug's 0.5 s poll and the interpreter's teardown of moto's many modules.
    sys.stderr.flush()
    os._exit(0)


def check_free(host: str, port: int) -> None:
    """Raise OSError if `port` is taken: moto's server thread dies silently on a port in use and its
    start() then waits forever."""
    if port:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))


def _exit_on_eof() -> None:
    sys.stdin.buffer.read()
    os.kill(os.getpid(), signal.SIGTERM)  # received by the main thread's sigwait


if __name__ == "__main__":
    raise SystemExit(main())
