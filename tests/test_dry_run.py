"""Dry runs: a plan with no side effect at all, and a plan that reads but never writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.cli.main import main
from orchestrator.sandbox import SandboxProcess, SandboxSettings

if TYPE_CHECKING:
    import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "playbooks" / "deploy.yml"

AUDITED = str(ROOT / "tests" / "audited_cli.py")  # orchestrate under an audit hook


def test_plain_dry_run_connects_nowhere_starts_nothing_and_writes_no_file() -> None:
    """`orchestrate --dry-run playbooks/deploy.yml` prints the plan with no connection, process or written file."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, AUDITED, "--dry-run", str(DEPLOY)], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    audit = proc.stderr.strip().splitlines()[-1]
    assert audit == "AUDIT []", audit
    assert "wave 0:" in proc.stdout and "configs" in proc.stdout and "cpu (declared) on processes" in proc.stdout


def test_the_audit_hook_would_see_a_side_effect(tmp_path: Path) -> None:
    """The same harness on a real run records its connections and processes (so the test above can fail)."""
    playbook = tmp_path / "p.yml"
    playbook.write_text("name: p\nsteps:\n  - {id: a, shell: {argv: ['true']}}\n")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, AUDITED, str(playbook), "--format", "json"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "subprocess.Popen" in proc.stderr.strip().splitlines()[-1] or "os.posix_spawn" in proc.stderr.strip().splitlines()[-1]


def test_dry_run_reads_serves_gets_creates_nothing_and_shows_the_post_bodies(capsys: pytest.CaptureFixture[str]) -> None:
    """`--dry-run=reads` runs the GETs, creates nothing, and shows each mutating request rendered."""
    with SandboxProcess(SandboxSettings()) as sandbox:
        code = main([str(DEPLOY), "--dry-run=reads", "--var", f"api={sandbox.url}", "--format", "json"])
        import urllib.request

        with urllib.request.urlopen(f"{sandbox.url}/v1/_stats") as response:
            stats = json.load(response)
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "planned"
    steps = {s["id"]: s for s in out["steps"]}
    assert steps["preflight"]["status"] == "succeeded" and steps["quota"]["status"] == "succeeded"
    assert stats["requests"]["by_method"] == {"GET": 1}
    assert all(count == 0 for count in stats["created"].values())
    assert steps["network"]["status"] == "planned"
    assert steps["network"]["request"]["method"] == "POST"
    assert steps["network"]["request"]["json"] == {"name": "web-net"}
    vms = steps["vms"]["request"]
    assert len(vms) == 8 and vms[3]["json"]["name"] == "web-3"
    assert vms[3]["json"]["network_id"] == "<steps.network.output.json.id>"
    assert steps["bucket"]["status"] == "planned" and steps["bucket"]["request"]["operation"] == "create_bucket"
    assert steps["delete_vms"]["status"] == "skipped"  # nothing failed, so nothing to roll back
