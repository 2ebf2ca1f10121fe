"""The shipped examples run as real programs against real local servers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from orchestrator.emulator import MotoProcess
from orchestrator.sandbox import SandboxProcess

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
OPS_INVENTORY = ROOT / "examples" / "ops_inventory.py"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoProcess]:
    """An AWS emulator of its own (moto's state is per process), holding two buckets."""
    with MotoProcess() as server:
        credentials = server.run_settings().aws_credentials
        assert credentials is not None
        s3 = boto3.session.Session(**credentials).client(
            "s3", region_name="us-east-1", endpoint_url=server.url)
        s3.create_bucket(Bucket="configs")
        s3.create_bucket(Bucket="logs-archive")
        for i in range(3):
            s3.put_object(Bucket="configs", Key=f"web-{i}.conf", Body=b"x" * (10 + i))
        yield server


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, dict[str, list[str]]]]:
    """The sandbox API in its own process, with two networks and three VMs; yields its URL and their ids."""
    with SandboxProcess() as process:
        assert process.url is not None
        nets = [post(f"{process.url}/v1/networks", {"name": f"net-{i}"})["id"] for i in range(2)]
        vms = [post(f"{process.url}/v1/vms", {"name": f"vm-{i}", "network_id": nets[i % 2]})["id"] for i in range(3)]
        yield process.url, {"networks": sorted(nets), "vms": sorted(vms), "load_balancers": []}


def run_inventory(moto: MotoProcess, api: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run the example as a program; moto's dummy credentials are in its environment only."""
    assert moto.url is not None
    return subprocess.run(
        [sys.executable, str(OPS_INVENTORY), "--aws-endpoint", moto.url, "--api", api, *extra],
        env={**os.environ, **moto.environment()}, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


def test_ops_inventory_lists_both_clouds_and_fingerprints_them_in_a_worker(moto: MotoProcess, sandbox: Any) -> None:
    """The JSON report holds every bucket (objects and bytes), every sandbox resource id, and a SHA-256 of
    that inventory computed in another process; each kind ran on its executor."""
    api, ids = sandbox
    done = run_inventory(moto, api, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    inventory = result["inventory"]
    assert inventory["s3"]["buckets"] == [
        {"name": "configs", "objects": 3, "bytes": 33},
        {"name": "logs-archive", "objects": 0, "bytes": 0},
    ]
    assert inventory["sandbox"] == ids
    canonical = json.dumps(inventory, sort_keys=True, separators=(",", ":"))
    assert result["fingerprint"]["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert result["fingerprint"]["pid"] != result["pid"]
    assert result["executors"] == {"non-blocking": "asyncio", "blocking": "threads", "cpu": "processes"}


def test_ops_inventory_prints_a_readable_summary(moto: MotoProcess, sandbox: Any) -> None:
    """Without --json the script prints one line per bucket and per sandbox collection."""
    api, _ = sandbox
    done = run_inventory(moto, api)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:5] == [
        "configs: 3 objects, 33 bytes", "logs-archive: 0 objects, 0 bytes",
        "sandbox networks: 2", "sandbox vms: 3", "sandbox load_balancers: 0",
    ]
    assert lines[5].startswith("fingerprint ")


def test_ops_inventory_fails_clearly_when_the_api_is_down(moto: MotoProcess) -> None:
    """An unreachable sandbox API makes the script exit 1 with a one-line connection error on stderr."""
    done = run_inventory(moto, "http://127.0.0.1:9")
    assert done.returncode == 1
    assert done.stderr.startswith("ops_inventory: ClientConnectorError: Cannot connect to host 127.0.0.1:9")
    assert "Traceback" not in done.stderr


def test_the_readme_python_example_deploys_against_the_embedded_target(tmp_path: Path) -> None:
    """The README's script, as written, runs deploy.yml to success with nothing set up beforehand."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## From Python", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    script = tmp_path / "deploy_from_python.py"
    script.write_text(block.split("# Without YAML", 1)[0])
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("succeeded ["), done.stdout
