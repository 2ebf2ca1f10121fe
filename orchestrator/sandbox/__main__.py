"""`python -m orchestrator.sandbox`: serve the sandbox API until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import signal
import socket
import sys

from orchestrator.sandbox.server import URL_PREFIX, start_sandbox
from orchestrator.sandbox.state import SandboxSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700


def is_loopback(host: str) -> bool:
    """True if every address `host` resolves to is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of the sandbox server."""
    parser = argparse.ArgumentParser(prog="python -m orchestrator.sandbox", description=__doc__)
    parser.add_argument(
        "--host",
        default=None,
        help=f"address to bind (default {DEFAULT_HOST}; non-loopback only when given explicitly)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to bind, 0 = any free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API request")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="probability of an injected 503")
    parser.add_argument(
        "--lost-rate", type=float, default=0.0, help="probability that a successful POST/PATCH's response is lost (connection dropped)"
    )
    parser.add_argument(
        "--rate-limit", type=float, default=None, help="requests per second (default unlimited)"
    )
    parser.add_argument(
        "--capacity", type=int, default=None,
        help="requests served at once (default unlimited); above it they queue, past twice it they get 429",
    )
    parser.add_argument(
        "--operation-delay", type=float, default=0.3, help="seconds until an async create is done"
    )
    parser.add_argument(
        "--never-ready",
        action="append",
        default=[],
        metavar="GLOB",
        help="VM name pattern whose create never completes (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for fault injection and ids")
    return parser


async def serve(settings: SandboxSettings, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, announcing the URL on stdout once listening."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # e.g. Windows: Ctrl-C still raises
            loop.add_signal_handler(sig, stop.set)
    async with start_sandbox(settings, host=host, port=port) as sandbox:
        print(f"{URL_PREFIX}{sandbox.url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the server, return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    host = args.host if args.host is not None else DEFAULT_HOST
    if args.host is not None and not is_loopback(host):
        # Explicit opt-in only: the sandbox has no authentication at all.
        print(f"warning: serving the unauthenticated sandbox on non-loopback address {host}", file=sys.stderr)
    try:
        settings = SandboxSettings(
            latency=args.latency,
            fault_rate=args.fault_rate,
            lost_rate=args.lost_rate,
            rate_limit=args.rate_limit,
            capacity=args.capacity,
            operation_delay=args.operation_delay,
            never_ready=tuple(args.never_ready),
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(serve(settings, host, args.port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # port in use, address not available
        print(f"error: cannot serve on {host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
