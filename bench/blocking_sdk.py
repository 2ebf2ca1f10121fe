"""Blocking SDK calls on the thread pool: the `aws` action and a blocking `call` against hand-written code.

1. boto3 ``put_object`` against moto in its own process (in-process, moto would share the GIL with
   the client and hide the overlap): a ``for_each`` step with ``concurrency: 16``; the same calls
   through a bare ``ThreadPoolExecutor(16)`` with one shared client; and one after another. Every
   side creates its client inside the timed part (a run creates its clients; ~0.15 s each).
   Target: step / bare pool ≤ 1.15.
2. Where blocking calls wait on the network: a synchronous client (urllib) calling the sandbox API
   (50 ms latency, own process) through a ``call`` step with ``kind: blocking``, ``concurrency: 16``,
   against the same calls made one after another. Target: speed-up ≥ 10x (ideal 16x).

Each figure is the best of ``--repeat`` runs, interleaved round by round; the sequential sandbox
run is sleep-bound and runs once. ``--quick`` runs small sizes for CI (< 30 s).

    python bench/blocking_sdk.py [--quick] [--calls 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/blocking_sdk.py` from a checkout
    sys.path.insert(0, str(ROOT))

import orchestrator  # noqa: E402
from bench.common import measure_rounds, ratio, say, seconds, table, times  # noqa: E402
from orchestrator.config import Config, TargetSettings  # noqa: E402
from orchestrator.emulator import MotoProcess  # noqa: E402

CONCURRENCY = 16
BUCKET = "bench-blocking-sdk"
LATENCY = 0.05
TARGET_POOL_RATIO = 1.15
TARGET_SPEEDUP = 10.0

PUT_PLAYBOOK = f"""
name: put objects
vars: {{calls: 0}}
steps:
  - id: put
    for_each: "{{{{ range(calls) }}}}"
    concurrency: {CONCURRENCY}
    aws: {{service: s3, operation: put_object, params: {{Bucket: {BUCKET}, Key: "k{{{{ item }}}}", Body: "object {{{{ item }}}}"}}}}
"""
FETCH_PLAYBOOK = f"""
name: fetch with a blocking client
vars: {{calls: 0, url: ""}}
steps:
  - id: fetch
    kind: blocking
    for_each: "{{{{ range(calls) }}}}"
    concurrency: {CONCURRENCY}
    call: _sync_client:fetch
    with: {{url: "{{{{ url }}}}"}}
"""


def s3_client(moto: MotoProcess, pool: int) -> Any:
    """A client like the action's: one attempt per call, a connection per thread."""
    import boto3.session
    from botocore.config import Config as BotoConfig

    config = BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=pool)
    session = boto3.session.Session(**(moto.run_settings().aws_credentials or {}))
    return session.client("s3", region_name="us-east-1", endpoint_url=moto.url, config=config)


def run_plan(plan: orchestrator.Plan, settings: TargetSettings) -> float:
    started = time.perf_counter()
    result = asyncio.run(orchestrator.arun(plan, settings=settings))
    elapsed = time.perf_counter() - started
    result.raise_on_error()
    return elapsed


def sdk_section(calls: int, repeat: int) -> dict[str, float]:
    """put_object: a step, a bare pool and a loop, against moto in its own process."""
    with MotoProcess() as moto:
        assert moto.url is not None
        s3_client(moto, 1).create_bucket(Bucket=BUCKET)
        config = Config(aws={"endpoint_url": moto.url, "region": "us-east-1"})
        playbook = orchestrator.loads(PUT_PLAYBOOK, file=str(ROOT / "bench" / "blocking_sdk.yml"))
        plan = orchestrator.plan(playbook, vars={"calls": calls}, config=config)

        def bare_pool() -> float:
            started = time.perf_counter()
            client = s3_client(moto, CONCURRENCY)
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                list(pool.map(lambda i: client.put_object(Bucket=BUCKET, Key=f"k{i}", Body=f"object {i}"), range(calls)))
            return time.perf_counter() - started

        def sequential() -> float:
            started = time.perf_counter()
            client = s3_client(moto, 1)
            for i in range(calls):
                client.put_object(Bucket=BUCKET, Key=f"k{i}", Body=f"object {i}")
            return time.perf_counter() - started

        measured = measure_rounds(
            {"step": lambda: run_plan(plan, moto.run_settings()), "bare pool": bare_pool, "sequential": sequential}, repeat
        )
    return {name: m.best for name, m in measured.items()}


def network_section(calls: int, repeat: int) -> dict[str, float]:
    """A synchronous client against the sandbox API with 50 ms latency: a blocking step and a loop."""
    from bench._sync_client import fetch
    from orchestrator.sandbox import SandboxProcess, SandboxSettings

    with SandboxProcess(SandboxSettings(latency=LATENCY)) as sandbox:
        url = f"{sandbox.url}/v1/networks"
        playbook = orchestrator.loads(FETCH_PLAYBOOK, file=str(ROOT / "bench" / "blocking_sdk.yml"))
        plan = orchestrator.plan(playbook, vars={"calls": calls, "url": url})

        def sequential() -> float:
            started = time.perf_counter()
            for _ in range(calls):
                fetch(url)
            return time.perf_counter() - started

        measured = measure_rounds({"step": lambda: run_plan(plan, TargetSettings()), "sequential": sequential}, repeat, once_above=2.0)
    return {name: m.best for name, m in measured.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/blocking_sdk.py", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for CI (< 30 s)")
    parser.add_argument("--calls", type=int, help="calls per side (default 200; 48 with --quick)")
    parser.add_argument("--repeat", type=int, help="runs per figure, best kept (default 5; 1 with --quick)")
    args = parser.parse_args(argv)
    from orchestrator.logs import LogSettings, configure

    configure(LogSettings(level="warning"))  # a program may configure logs: no per-step info lines
    calls = args.calls or (48 if args.quick else 200)
    repeat = args.repeat or (1 if args.quick else 5)

    say(f"boto3 put_object x{calls} against moto in its own process ...")
    sdk = sdk_section(calls, repeat)
    pool_ratio = ratio(sdk["step"], sdk["bare pool"])
    print(f"## boto3 put_object x{calls}, {CONCURRENCY} in flight, moto in its own process\n")
    print(table(["side", "time", "calls/s", "vs sequential"], [
        [name, seconds(t), calls / t, times(ratio(sdk["sequential"], t))] for name, t in sdk.items()
    ]))
    print(f"\nstep / bare pool: {times(pool_ratio)} (target ≤ {TARGET_POOL_RATIO}: {'holds' if pool_ratio <= TARGET_POOL_RATIO else 'MISSED'})\n")

    say(f"urllib GET x{calls} against the sandbox API ({LATENCY * 1000:.0f} ms latency) ...")
    net = network_section(calls, repeat)
    speedup = ratio(net["sequential"], net["step"])
    ideal = calls / -(-calls // CONCURRENCY)  # calls over the rounds of CONCURRENCY they need
    print(f"## a blocking client, {calls} calls at {LATENCY * 1000:.0f} ms latency, {CONCURRENCY} in flight\n")
    print(table(["side", "time", "calls/s"], [[name, seconds(t), calls / t] for name, t in net.items()]))
    print(f"\nspeed-up of the blocking step over sequential: {times(speedup)} (ideal {ideal:.1f}x; "
          f"target ≥ {TARGET_SPEEDUP:g}x: {'holds' if speedup >= TARGET_SPEEDUP else 'MISSED'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
