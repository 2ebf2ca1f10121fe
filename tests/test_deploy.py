"""The main job, playbooks/deploy.yml, against the sandbox API and the AWS emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orchestrator
from orchestrator.config import Config, TargetSettings
from orchestrator.emulator import CREDENTIALS
from orchestrator.sandbox import SandboxProcess, SandboxSettings, start_sandbox

if TYPE_CHECKING:
    import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "playbooks" / "deploy.yml"
RESOURCES = ("networks", "vms", "load_balancers", "dns_records", "lb_members")


def _aws(moto_url: str) -> tuple[Config, TargetSettings]:
    config = Config.parse({"aws": {"endpoint_url": moto_url, "region": "us-east-1"}})
    return config, TargetSettings(aws_credentials=dict(CREDENTIALS))


async def test_deploy_succeeds_through_faults_and_rate_limits_creating_each_resource_once(moto_url: str, s3: Any) -> None:
    """With 20% of requests failing and a 50/s server rate limit, deploy succeeds and creates each resource exactly once."""
    config, settings = _aws(moto_url)
    async with start_sandbox(SandboxSettings(fault_rate=0.2, rate_limit=50, seed=11, operation_delay=0.2)) as sandbox:
        result = await orchestrator.arun(
            DEPLOY, vars={"api": sandbox.url, "bucket": "deploy-faults", "replicas": 8}, config=config, settings=settings
        )
        stats = await sandbox.stats()
    assert result.status == "succeeded", [(s.id, s.error) for s in result.steps if s.error]
    assert sum(s.retries for s in result.steps) > 0, "a 20% fault rate should have forced retries"
    assert stats["requests"]["by_status"].get("503", 0) > 0
    assert {k: stats["created"][k] for k in RESOURCES} == {
        "networks": 1, "vms": 8, "load_balancers": 1, "dns_records": 8, "lb_members": 8,
    }
    assert all(stats["deleted"][k] == 0 for k in RESOURCES)
    upload = result.step("upload")
    assert (upload.kind, upload.executor, upload.items) == ("blocking", "threads", 8)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="deploy-faults")["Contents"])
    vm_ids = sorted(vm["json"]["id"] for vm in result.step("vms_ready").output)
    assert keys == [f"web/{vm}.conf" for vm in vm_ids]
    body = s3.get_object(Bucket="deploy-faults", Key=keys[0])["Body"].read().decode()
    assert f"id = {vm_ids[0]}" in body and "checksum = " in body


async def test_creates_whose_responses_are_lost_are_replayed_by_idempotency_key_not_made_twice(moto_url: str, s3: Any) -> None:
    """The sandbox makes 30% of creates but drops the connection instead of answering. Each retried
    POST carries the same Idempotency-Key, the sandbox replays its first answer, and every resource
    still exists exactly once."""
    config, settings = _aws(moto_url)
    async with start_sandbox(SandboxSettings(lost_rate=0.3, seed=5, operation_delay=0.1)) as sandbox:
        result = await orchestrator.arun(
            DEPLOY, vars={"api": sandbox.url, "bucket": "deploy-lost", "replicas": 8}, config=config, settings=settings
        )
        stats = await sandbox.stats()
    assert result.status == "succeeded", [(s.id, s.error) for s in result.steps if s.error]
    assert stats["lost_responses"] >= 3
    assert stats["idempotent_replays"] == stats["lost_responses"]  # every lost answer was asked for again, and replayed
    assert {k: stats["created"][k] for k in RESOURCES} == {
        "networks": 1, "vms": 8, "load_balancers": 1, "dns_records": 8, "lb_members": 8,
    }


async def test_a_vm_that_never_becomes_ready_fails_the_deploy_and_rollback_deletes_what_it_created(moto_url: str) -> None:
    """A stuck VM fails vms_ready; rollback deletes the VMs, load balancer and network the run created."""
    config, settings = _aws(moto_url)
    async with start_sandbox(SandboxSettings(never_ready=("web-3",), operation_delay=0.1)) as sandbox:
        result = await orchestrator.arun(
            DEPLOY, vars={"api": sandbox.url, "bucket": "deploy-stuck", "replicas": 5, "ready_timeout": "2s"},
            config=config, settings=settings,
        )
        stats = await sandbox.stats()
    assert result.status == "failed" and result.exit_code == 1
    failed = [s.id for s in result.steps if s.status == "failed"]
    assert failed == ["vms_ready"]
    assert "condition not met" in str(result.step("vms_ready").error)
    assert [result.step(s).status for s in ("delete_dns", "delete_lb", "delete_vms", "delete_network")] == ["succeeded"] * 4
    assert stats["created"]["vms"] == 5 and stats["deleted"]["vms"] == 5
    assert stats["created"]["load_balancers"] == stats["deleted"]["load_balancers"] == 1
    assert stats["created"]["networks"] == stats["deleted"]["networks"] == 1
    assert all(stats["live"][k] == 0 for k in RESOURCES), stats["live"]


def test_the_cli_names_the_failing_step_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str], moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the CLI, a failed deploy exits 1 and its JSON names the failing step."""
    from orchestrator.cli.main import main

    for key, value in {"AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"], "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"]}.items():
        monkeypatch.setenv(key, value)
    config = tmp_path / "config.yml"
    config.write_text(f"aws: {{endpoint_url: '{moto_url}', region: us-east-1}}\n")

    with SandboxProcess(SandboxSettings(never_ready=("web-0",), operation_delay=0.1)) as sandbox:
        code = main([
            str(DEPLOY), "--var", f"api={sandbox.url}", "--var", "ready_timeout=1s", "--var", "replicas=2",
            "--var", "bucket=deploy-cli", "--config", str(config), "--format", "json",
        ])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["status"] == "failed"
    assert [s["id"] for s in out["steps"] if s["status"] == "failed"] == ["vms_ready"]
