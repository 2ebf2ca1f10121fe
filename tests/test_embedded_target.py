"""With no set-up, a playbook aimed at the sandbox address runs against the embedded target: the
sandbox API (and the AWS emulator, for `aws` steps) is started for the run and stopped after, or a
sandbox already answering there, such as one started by `orchestrate sandbox` with its own faults,
is used. `--var api=URL` aims the CLI elsewhere and starts nothing. Scripts get the same target
from `orchestrator.embedded_target`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

import orchestrator
from orchestrator.config import TargetSettings, loads_config
from orchestrator.sandbox import SandboxProcess, SandboxSettings

ROOT = Path(__file__).resolve().parents[2]
STARTED_SANDBOX = "orchestrate: started the embedded sandbox API at"
USING_SANDBOX = "orchestrate: using the sandbox API already answering at"
STARTED_AWS = "orchestrate: started the embedded AWS emulator at"

PLAYBOOK = """
name: embedded target
vars: {{api: "{url}", bucket: embedded-target}}
defaults: {{retry: {{attempts: 8, delay: 0.05s}}}}
steps:
  - id: network
    http: {{method: POST, url: "{{{{ api }}}}/v1/networks", json: {{name: web}}, expect: [201, 202]}}
{aws}"""

AWS_STEPS = """  - id: bucket
    aws: {service: s3, operation: create_bucket, params: {Bucket: "{{ bucket }}"}}
  - id: listed
    aws: {service: s3, operation: list_buckets}
    needs: [bucket]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def files(tmp_path: Path, url: str, aws: bool = True) -> tuple[Path, Path]:
    """A playbook whose `api` defaults to `url`, and a configuration whose sandbox serves there."""
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(PLAYBOOK.format(url=url, aws=AWS_STEPS if aws else ""))
    config = tmp_path / "config.yml"
    config.write_text(f'sandbox: {{url: "{url}"}}\nhistory: {{enabled: false}}\n')
    return playbook, config


def orchestrate(tmp_path: Path, url: str, *argv: str, aws: bool = True) -> subprocess.CompletedProcess[str]:
    playbook, config = files(tmp_path, url, aws)
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", str(playbook), "--config", str(config), "--format", "json", *argv],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


def outcome(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {s["id"]: s["status"] for s in json.loads(proc.stdout)["steps"]}


def notices(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("orchestrate: ")]


async def stats(url: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/v1/_stats") as response:
        return dict(await response.json())


def test_nothing_answering_starts_the_sandbox_and_emulator_for_the_run_only(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = orchestrate(tmp_path, url)
    assert outcome(proc) == {"network": "succeeded", "bucket": "succeeded", "listed": "succeeded"}
    said = notices(proc)
    assert f"{STARTED_SANDBOX} {url}" in said
    assert any(line.startswith(STARTED_AWS) for line in said)
    assert not answers(url), "the sandbox outlived the run"


async def test_a_sandbox_already_answering_is_used_as_it_is_with_the_emulator_beside_it(tmp_path: Path) -> None:
    port = free_port()
    settings = SandboxSettings(fault_rate=0.3, seed=3)
    with SandboxProcess(settings, port=port) as sandbox:
        assert sandbox.url is not None
        proc = orchestrate(tmp_path, sandbox.url)
        assert outcome(proc) == {"network": "succeeded", "bucket": "succeeded", "listed": "succeeded"}
        said = notices(proc)
        assert f"{USING_SANDBOX} {sandbox.url}" in said
        assert not any(line.startswith(STARTED_SANDBOX) for line in said)
        assert any(line.startswith(STARTED_AWS) for line in said)  # aws steps never go to real AWS
        seen = await stats(sandbox.url)
        assert seen["created"]["networks"] == 1  # type: ignore[index]
        assert seen["requests"]["by_status"].get("503", 0) > 0  # type: ignore[index]  # its own faults


def test_a_sandbox_already_answering_is_all_a_playbook_without_aws_steps_needs(tmp_path: Path) -> None:
    with SandboxProcess(port=free_port()) as sandbox:
        url = sandbox.url
        assert url is not None
        proc = orchestrate(tmp_path, url, aws=False)
    assert outcome(proc) == {"network": "succeeded"}
    assert notices(proc) == [f"{USING_SANDBOX} {url}"]


def test_var_api_aims_the_playbook_elsewhere_and_starts_nothing(tmp_path: Path) -> None:
    with SandboxProcess(port=free_port()) as sandbox:
        proc = orchestrate(tmp_path, f"http://127.0.0.1:{free_port()}", "--var", f"api={sandbox.url}", aws=False)
    assert outcome(proc) == {"network": "succeeded"}
    assert notices(proc) == []


def test_a_script_gets_the_same_target_from_embedded_target(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    playbook, config = files(tmp_path, url)
    plan = orchestrator.plan(playbook, config=loads_config(config.read_text()))
    said: list[str] = []
    with orchestrator.embedded_target(plan, say=said.append) as settings:
        result = orchestrator.run(plan, settings=settings)
    assert result.status == "succeeded", [s.error for s in result.steps]
    assert said[0] == f"started the embedded sandbox API at {url}"
    assert said[1].startswith("started the embedded AWS emulator at http://127.0.0.1:")
    assert not answers(url)


def test_a_plan_aimed_elsewhere_needs_no_target(tmp_path: Path) -> None:
    playbook, config = files(tmp_path, f"http://127.0.0.1:{free_port()}")
    plan = orchestrator.plan(playbook, vars={"api": "https://api.example.com"}, config=loads_config(config.read_text()))
    said: list[str] = []
    with orchestrator.embedded_target(plan, say=said.append) as settings:
        assert settings == TargetSettings() and said == []
