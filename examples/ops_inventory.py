"""An ops script without YAML: an inventory of S3 and of the sandbox cloud, with `orchestrator.Scheduler`.

Each kind of work runs where it belongs:

- boto3 (synchronous) lists buckets and their objects on the thread pool (``kind="blocking"``),
  one client shared by every thread;
- aiohttp fetches the sandbox API's networks, VMs and load balancers as coroutines on the event loop;
- the inventory's fingerprint (many rounds of SHA-256) is computed in a worker process (``kind="cpu"``).

Credentials follow boto3's standard chain (for moto: ``AWS_ACCESS_KEY_ID=testing`` and so on).

    python examples/ops_inventory.py --aws-endpoint http://127.0.0.1:5000 --api http://127.0.0.1:8700 [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

FINGERPRINT_ROUNDS = 20_000
SANDBOX_COLLECTIONS = ("networks", "vms", "load_balancers")


def canonical(document: Any) -> str:
    """The inventory as canonical JSON (sorted keys, compact): what the fingerprint is computed over."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(text: str, rounds: int = FINGERPRINT_ROUNDS) -> dict[str, Any]:
    """CPU work: SHA-256 of `text`, then `rounds` more times over the digest. Holds the GIL throughout."""
    digest = hashlib.sha256(text.encode()).digest()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "stretched": digest.hex(), "pid": os.getpid()}


def s3_client(endpoint: str | None, region: str) -> Any:
    """Blocking: creating a boto3 client reads model files (~0.15 s), so it runs on a thread too."""
    import boto3

    return boto3.session.Session().client("s3", region_name=region, endpoint_url=endpoint)


def bucket_summary(s3: Any, name: str) -> dict[str, Any]:
    """Blocking: every page of one bucket's listing, summed."""
    objects = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            objects += 1
            size += item["Size"]
    return {"name": name, "objects": objects, "bytes": size}


async def fetch_items(http: Any, url: str) -> list[dict[str, Any]]:
    """Non-blocking: one GET on the shared aiohttp session."""
    async with http.get(url) as response:
        response.raise_for_status()
        body: dict[str, Any] = await response.json()
        return list(body["items"])


async def collect(results: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in results]


async def inventory(aws_endpoint: str | None, api: str, region: str) -> dict[str, Any]:
    """Gather both inventories concurrently, then fingerprint them on a worker process."""
    import aiohttp

    from orchestrator import Scheduler

    async with Scheduler() as sched, aiohttp.ClientSession() as http:
        s3 = await sched.submit(s3_client, aws_endpoint, region, kind="blocking")
        names = [b["Name"] for b in (await sched.submit(s3.list_buckets, kind="blocking"))["Buckets"]]
        buckets, *collections = await asyncio.gather(
            collect(sched.map(functools.partial(bucket_summary, s3), names, kind="blocking", concurrency=8)),
            *(sched.submit(fetch_items, http, f"{api.rstrip('/')}/v1/{name}") for name in SANDBOX_COLLECTIONS),
        )
        document = {
            "s3": {"buckets": buckets},
            "sandbox": {name: sorted(item["id"] for item in items) for name, items in zip(SANDBOX_COLLECTIONS, collections, strict=True)},
        }
        digest = await sched.submit(fingerprint, canonical(document), kind="cpu")
        executors = {kind: sched.executor_name(kind) for kind in ("non-blocking", "blocking", "cpu")}
    return {"inventory": document, "fingerprint": digest, "executors": executors, "pid": os.getpid()}


def report(result: dict[str, Any]) -> str:
    inv = result["inventory"]
    lines = [f"{b['name']}: {b['objects']} objects, {b['bytes']} bytes" for b in inv["s3"]["buckets"]]
    lines += [f"sandbox {name}: {len(ids)}" for name, ids in inv["sandbox"].items()]
    lines.append(f"fingerprint {result['fingerprint']['sha256'][:16]} (computed in process {result['fingerprint']['pid']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Inventory S3 buckets and the sandbox cloud.")
    parser.add_argument("--aws-endpoint", help="an S3 endpoint such as a moto server (default: AWS itself)")
    parser.add_argument("--api", required=True, help="the sandbox API, e.g. http://127.0.0.1:8700")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(inventory(args.aws_endpoint, args.api, args.region))
    except Exception as exc:  # an ops script reports a failure in one line, not a traceback
        print(f"ops_inventory: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":  # guarded: the cpu worker processes import this file as __mp_main__
    sys.exit(main())
