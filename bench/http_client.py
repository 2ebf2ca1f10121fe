"""Requests per second of the `http` action against the raw clients it is built on.

Three clients send the same GETs to a local aiohttp.web server that runs in its own process (so the
client is measured, not a server sharing its GIL):

* raw aiohttp: one ClientSession, N workers each doing ``async with session.get(url) as r: await r.read()``;
* aiohttp+output: the same, also building what the action outputs (lowercase headers, text, parsed
  JSON) and keeping it, as a script wanting those would;
* raw httpx: one AsyncClient, the same workers;
* the `http` action: a one-step playbook, ``for_each`` over the items with ``concurrency: N``, run
  through ``orchestrator.arun`` on the default client (planned before timing; the run, its session
  and its teardown are timed, as the raw clients' session creation and close are);
* +retry/timeout: the same step with what production steps usually add (``retry``, a ``timeout``
  per attempt, a named ``limit`` sized not to bind). Shown, not targeted.

Scenarios: (a) zero latency, 5,000 GETs, 100 in flight; (b) 50 ms server latency, 1,000 GETs, 200
in flight (ideal 0.25 s). Each figure is the best of ``--repeat`` runs, interleaved round by round
(httpx runs fewer GETs, and once when a run takes more than 5 s: it is that slow). Besides wall
time, each row shows the client process's CPU per request, which holds better than wall time on a
shared machine. At zero latency the action's ratio is also shown round by round (median and range):
each round's two runs are seconds apart, so the spread shows how much one best-of figure can move. ``--quick`` runs small sizes for
CI (well under 20 s). ``--server sandbox`` serves the sandbox API instead of the minimal server.

    python bench/http_client.py [--quick] [--repeat 5] [--server minimal|sandbox] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/http_client.py` from a checkout
    sys.path.insert(0, str(ROOT))

ONCE_ABOVE = 5.0  # seconds: a client this slow (httpx) runs once
TARGET = 0.8  # the action's requests/s over raw aiohttp's, at zero latency
LATENCY_TARGET = 1.1  # the action's time over raw aiohttp's, with server latency


@dataclass(frozen=True)
class Scenario:
    name: str
    latency: float
    requests: int
    in_flight: int
    httpx_requests: int  # fewer: httpx is slow enough that the full count would dominate the run


FULL = (Scenario("a) zero latency", 0.0, 5000, 100, 1000), Scenario("b) 50 ms latency", 0.05, 1000, 200, 1000))
QUICK = (Scenario("a) zero latency", 0.0, 1000, 100, 200), Scenario("b) 50 ms latency", 0.05, 400, 200, 200))


# --- the server, in its own process -------------------------------------------------------------------


def _serve(latency: float, conn: Any) -> None:
    from aiohttp import web

    body = b'{"id": "item-1", "status": "ready", "tags": ["a", "b"]}'

    async def item(request: web.Request) -> web.Response:
        if latency:
            await asyncio.sleep(latency)
        return web.Response(body=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/item", item)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        conn.send(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


class Server:
    """A minimal JSON server (or the sandbox) in a child process, for the duration of a `with` block."""

    def __init__(self, latency: float, kind: str) -> None:
        self.latency = latency
        self.kind = kind
        self.url = ""
        self._proc: Any = None

    def __enter__(self) -> Server:
        if self.kind == "sandbox":
            from orchestrator.sandbox import SandboxProcess, SandboxSettings

            self._proc = SandboxProcess(SandboxSettings(latency=self.latency))
            self.url = self._proc.start() + "/v1/networks"
            return self
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(self.latency, child), daemon=True)
        self._proc.start()
        if not parent.poll(15):
            raise RuntimeError("bench server did not start")
        self.url = f"http://127.0.0.1:{parent.recv()}/item"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.kind == "sandbox":
            self._proc.stop()
        else:
            self._proc.terminate()
            self._proc.join(5)


# --- the clients ----------------------------------------------------------------------------------------


async def _workers(n: int, width: int, one: Callable[[], Awaitable[Any]]) -> None:
    left = iter(range(n))

    async def worker() -> None:
        for _ in left:
            await one()

    await asyncio.gather(*(worker() for _ in range(min(width, n))))


Timing = tuple[float, float]  # wall seconds, client CPU seconds


async def raw_aiohttp(url: str, n: int, width: int) -> Timing:
    import aiohttp

    started, cpu = time.perf_counter(), time.process_time()
    # The same pool as the action's default (config http.max_connections: 200).
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:

        async def one() -> None:
            async with session.get(url) as response:
                await response.read()
                assert response.status == 200

        await _workers(n, width, one)
    return time.perf_counter() - started, time.process_time() - cpu


async def raw_aiohttp_output(url: str, n: int, width: int) -> Timing:
    """Raw aiohttp producing what the action outputs: lowercase headers, text and parsed JSON, kept."""
    import json

    import aiohttp

    started, cpu = time.perf_counter(), time.process_time()
    outputs: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:

        async def one() -> None:
            async with session.get(url) as response:
                text = (await response.read()).decode()
                headers = {k.lower(): v for k, v in response.headers.items()}
                outputs.append({"status": response.status, "headers": headers, "json": json.loads(text), "text": text})

        await _workers(n, width, one)
    return time.perf_counter() - started, time.process_time() - cpu


async def raw_httpx(url: str, n: int, width: int) -> Timing:
    import httpx

    started, cpu = time.perf_counter(), time.process_time()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(limits=limits) as client:

        async def one() -> None:
            response = await client.get(url)
            assert response.status_code == 200

        await _workers(n, width, one)
    return time.perf_counter() - started, time.process_time() - cpu


# What a production step usually adds: retries, a timeout per attempt and a named limit (sized not
# to bind, so only its bookkeeping is measured).
GUARDED = """
    retry: {attempts: 3, delay: 0.2s}
    timeout: 30s
    limit: api"""


def _plan(url: str, n: int, width: int, guarded: bool = False) -> Any:
    import orchestrator

    text = f"""
name: bench http
vars: {{url: "{url}", n: {n}}}
limits: {{api: {{concurrency: {width}}}}}
steps:
  - id: get
    for_each: "{{{{ range(n) }}}}"
    concurrency: {width}
    http: {{url: "{{{{ url }}}}"}}{GUARDED if guarded else ""}
"""
    return orchestrator.plan(orchestrator.loads(text, file=str(ROOT / "bench" / "http_bench.yml")))


async def action(plan: Any) -> Timing:
    import orchestrator

    started, cpu = time.perf_counter(), time.process_time()
    result = await orchestrator.arun(plan)
    elapsed = time.perf_counter() - started, time.process_time() - cpu
    if result.status != "succeeded":
        raise RuntimeError(f"bench run failed: {result.steps[0].error}")
    return elapsed


# --- the report -----------------------------------------------------------------------------------------


Rounds = dict[str, list[float]]  # each client's wall seconds, round by round


def run_scenario(s: Scenario, repeat: int, server_kind: str, rounds: Rounds | None = None) -> dict[str, tuple[int, float, float]]:
    """Best (requests, wall seconds, CPU seconds) of each client; CPU from the fastest run too.
    Every run's wall time goes to `rounds` when given."""
    with Server(s.latency, server_kind) as server:
        plan = _plan(server.url, s.requests, s.in_flight)
        guarded = _plan(server.url, s.requests, s.in_flight, guarded=True)
        cells: dict[str, tuple[int, Callable[[], Coroutine[Any, Any, Timing]]]] = {
            "raw aiohttp": (s.requests, lambda: raw_aiohttp(server.url, s.requests, s.in_flight)),
            "aiohttp+output": (s.requests, lambda: raw_aiohttp_output(server.url, s.requests, s.in_flight)),
            "http action": (s.requests, lambda: action(plan)),
            "+retry/timeout": (s.requests, lambda: action(guarded)),
            # last in each round: its seconds of CPU would otherwise sit between the two compared
            "raw httpx": (s.httpx_requests, lambda: raw_httpx(server.url, s.httpx_requests, s.in_flight)),
        }
        # Warm up the server, and the engine's first-run costs (lazy imports, logger caches).
        asyncio.run(raw_aiohttp(server.url, min(s.requests, 200), s.in_flight))
        asyncio.run(action(_plan(server.url, 50, s.in_flight)))
        best: dict[str, tuple[int, float, float]] = {}
        for _ in range(repeat):
            for name, (n, cell) in cells.items():
                if name in best and best[name][1] > ONCE_ABOVE:
                    continue
                wall, cpu = asyncio.run(cell())
                if rounds is not None:
                    rounds.setdefault(name, []).append(wall)
                if name not in best or wall < best[name][1]:
                    best[name] = (n, wall, cpu)
    return best


def report(s: Scenario, best: dict[str, tuple[int, float, float]]) -> None:
    ideal = f", ideal {s.requests / s.in_flight * s.latency:.2f} s" if s.latency else ""
    print(f"\n{s.name}: {s.requests:,} GETs, {s.in_flight} in flight{ideal}")
    print(f"  {'client':<15}{'GETs':>7}{'time':>10}{'req/s':>9}{'vs aiohttp':>12}{'CPU us/req':>12}{'vs aiohttp':>12}")
    _, base_wall, base_cpu = best["raw aiohttp"]
    base_rate, base_cost = s.requests / base_wall, base_cpu / s.requests
    for name, (n, wall, cpu) in best.items():
        rate, cost = n / wall, cpu / n
        print(f"  {name:<15}{n:>7,}{wall:>9.3f}s{rate:>9,.0f}{rate / base_rate:>11.2f}x{cost * 1e6:>12,.0f}{base_cost / cost:>11.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the best is kept")
    parser.add_argument("--server", choices=("minimal", "sandbox"), default="minimal")
    parser.add_argument("--profile", action="store_true", help="cProfile the action at zero latency and print the top")
    args = parser.parse_args()

    from orchestrator.logs import LogSettings, configure

    configure(LogSettings(format="console", level="warning"))  # the engine's info lines would swamp stdout
    scenarios = QUICK if args.quick else FULL
    repeat = 1 if args.quick else args.repeat
    if args.profile:
        profile(scenarios[0], args.server)
        return
    for s in scenarios:
        rounds: Rounds = {}
        best = run_scenario(s, repeat, args.server, rounds)
        report(s, best)
        if s.latency == 0:
            summary(best, rounds)
        else:
            latency_summary(best)


def summary(best: dict[str, tuple[int, float, float]], rounds: Rounds) -> None:
    """The action's throughput over raw aiohttp's at zero latency, by wall time and by client CPU;
    then the same ratio taken round by round (each pair of runs seconds apart, so a machine that
    speeds up or slows down between rounds moves both), as its median and range."""
    _, wall, cpu = best["http action"]
    print()
    for base in ("raw aiohttp", "aiohttp+output"):
        _, base_wall, base_cpu = best[base]
        verdict = "meets" if base_wall / wall >= TARGET else "misses"
        print(f"action/{base} at zero latency: {base_wall / wall:.2f}x req/s ({verdict} the {TARGET}x target), "
              f"{base_cpu / cpu:.2f}x by client CPU")
    paired = sorted(r / a for r, a in zip(rounds["raw aiohttp"], rounds["http action"], strict=True))
    if len(paired) > 1:
        print(f"action/raw aiohttp round by round: median {statistics.median(paired):.2f}x "
              f"(from {paired[0]:.2f}x to {paired[-1]:.2f}x over {len(paired)} rounds)")


def latency_summary(best: dict[str, tuple[int, float, float]]) -> None:
    """The action's time over raw aiohttp's with server latency: waiting, not CPU, should dominate."""
    ratio = best["http action"][1] / best["raw aiohttp"][1]
    verdict = "meets" if ratio <= LATENCY_TARGET else "misses"
    print(f"\naction/raw aiohttp time with latency: {ratio:.2f}x ({verdict} the {LATENCY_TARGET}x target)")


def profile(s: Scenario, server_kind: str) -> None:
    import cProfile
    import pstats

    with Server(s.latency, server_kind) as server:
        plan = _plan(server.url, s.requests, s.in_flight)
        asyncio.run(action(plan))
        profiler = cProfile.Profile()
        profiler.enable()
        asyncio.run(action(plan))
        profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
