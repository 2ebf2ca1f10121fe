"""Dry runs: a plan with no side effect at all, and a plan that reads but never writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.cli.main import main
from orchestrator.sandbox import SandboxProcess, SandboxSettings

if TYPE_CHECKING:
    import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "playbooks" / "deploy.yml"

# Runs the CLI's dry run under an audit hook that records every network connection, process start
# and file opened for writing, from inside the interpreter (audit hooks see what C code does too).
_AUDITED = textwrap.dedent("""
    import os, sys
    seen = []
    WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    def hook(event, args):
        # (socket.bind is left out: urllib3, imported with botocore, probes IPv6 support by binding
        # a socket to ::1 at import time; that opens no connection and sends nothing.)
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg", "subprocess.Popen", "os.fork", "os.forkpty",
                     "os.posix_spawn", "os.spawn", "os.exec", "os.system", "os.remove", "os.rename", "os.mkdir"):
            seen.append(event)
        elif event == "open":
            path, mode, flags = args
            if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & WRITE):
                if not (isinstance(path, int) or str(path).startswith("/dev/")):
                    seen.append(f"open-for-write {path}")
    sys.addaudithook(hook)
    from orchestrator.cli.main import main
    code = main(sys.argv[1:])
    sys.stdout.flush()
    print("AUDIT " + repr(seen), file=sys.stderr)
    sys.exit(code)
""")


def test_plain_dry_run_connects_nowhere_starts_nothing_and_writes_no_file() -> None:
    """`orchestrate --dry-run playbooks/deploy.yml` prints the plan with no connection, process or written file."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _AUDITED, "--dry-run", str(DEPLOY)], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
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
    proc = subprocess.run([sys.executable, "-c", _AUDITED, str(playbook), "--format", "json"], capture_output=True, text=True, timeout=60, env=env)
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
