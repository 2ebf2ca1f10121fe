"""An unchanged playbook on a Dask cluster started as separate processes (`dask scheduler`, two
`dask worker`s on 127.0.0.1): shipped modules, log lines home, dead workers, no workers, timeouts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orchestrator
from orchestrator.config import loads_config
from tests.dask.conftest import config_text

if TYPE_CHECKING:
    from tests.dask.cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]

WORK = """\
import os
import time

from orchestrator.logs import get_logger

log = get_logger("work")


def square(n):
    log.info("item.done", n=n)
    return {"value": n * n, "pid": os.getpid()}


def hold(folder, n, seconds):
    with open(os.path.join(folder, f"{n}.pid"), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()
"""

FAN_OUT = """\
name: cpu fan-out
steps:
  - id: squares
    kind: cpu
    for_each: "{{ range(200) }}"
    concurrency: 50
    call: work:square
    with: {n: "{{ item }}"}
  - id: summary
    log: "values={{ steps.squares.output | map(attribute='value') | sum }} pids={{ steps.squares.output | map(attribute='pid') | unique | list }}"
"""


def orchestrate(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", *argv, "--format", "json", "--log-format", "json"],
        capture_output=True, text=True, timeout=180, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def log_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_a_200_item_cpu_fan_out_runs_on_the_workers_with_only_the_configuration_changed(two_workers: Cluster, tmp_path: Path) -> None:
    """The playbook's own module reaches the workers, results equal the process pool's, the pids are
    the workers', and each item's log line reaches the CLI's JSON log stream with run_id and step."""
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "fan.yml").write_text(FAN_OUT)
    (tmp_path / "dask.yml").write_text(config_text(two_workers.address))
    on_dask = orchestrate("fan.yml", "--config", "dask.yml", cwd=tmp_path)
    assert on_dask.returncode == 0, on_dask.stderr[-3000:]
    local = orchestrate("fan.yml", cwd=tmp_path)
    assert local.returncode == 0, local.stderr[-3000:]

    result = json.loads(on_dask.stdout)
    assert [(s["id"], s["executor"], s["status"]) for s in result["steps"]] == [("squares", "dask", "succeeded"), ("summary", "asyncio", "succeeded")]
    lines = log_lines(on_dask.stderr)
    summary = next(line["message"] for line in lines if line["event"] == "playbook.log")
    local_summary = next(line["message"] for line in log_lines(local.stderr) if line["event"] == "playbook.log")
    assert summary.split()[0] == local_summary.split()[0] == f"values={sum(n * n for n in range(200))}"
    pids = set(json.loads(summary.split("pids=")[1]))
    assert pids and pids <= two_workers.worker_pids()

    done = [line for line in lines if line["event"] == "item.done"]
    assert sorted(line["n"] for line in done) == list(range(200))
    assert {(line["run_id"], line["step"]) for line in done} == {(result["run_id"], "squares")}
    assert all(line["worker"].startswith("tcp://127.0.0.1:") and isinstance(line["index"], int) for line in done)
    shipped = next(line for line in lines if line["event"] == "dask.shipped")
    assert shipped["modules"] == ["work"]


def test_the_dry_run_says_which_modules_are_shipped(two_workers: Cluster, tmp_path: Path) -> None:
    """Planning names the modules beside the playbook that go to the workers, without running any."""
    (tmp_path / "work.py").write_text("raise SystemExit('imported')\n")
    (tmp_path / "fan.yml").write_text(FAN_OUT.replace("work:square", "work:square_never_defined"))
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "dask.yml").write_text(config_text(two_workers.address))
    done = orchestrate("fan.yml", "--config", "dask.yml", "--dry-run", cwd=tmp_path)
    assert done.returncode == 2  # the function is not there: found by reading the source
    (tmp_path / "fan.yml").write_text(FAN_OUT)
    done = orchestrate("fan.yml", "--config", "dask.yml", "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ships = next(line for line in log_lines(done.stderr) if line["event"] == "plan.dask_ships")
    assert (ships["modules"], ships["installed"], ships["steps"]) == (["work"], [], ["squares"])


def _hold_plan(folder: Path, module: str, address: str, retry: int, **extra: str) -> orchestrator.Plan:
    """Four items that each hold a worker for 2 s; `module` is the helper's name (each test its own:
    this process imports it, and one name means one module per process)."""
    path = folder / "hold.yml"
    (folder / f"{module}.py").write_text(WORK)
    path.write_text(textwrap.dedent(f"""\
        name: hold
        steps:
          - id: hold
            kind: cpu
            for_each: [0, 1, 2, 3]
            concurrency: 4
            retry: {retry}
            timeout: 20s
            on_error: continue
            call: {module}:hold
            with: {{folder: "{folder}", n: "{{{{ item }}}}", seconds: 2}}
        """))
    return orchestrator.plan(path, config=loads_config(config_text(address, **extra)))


def _pids(folder: Path) -> list[int]:
    return [int(text) for p in folder.glob("*.pid") if (text := p.read_text())]


async def _when_all_started(folder: Path, n: int = 2, timeout: float = 30) -> list[int]:
    """The pids written by the first `n` calls to start."""
    deadline = time.monotonic() + timeout
    while len(pids := _pids(folder)) < n:
        assert time.monotonic() < deadline, "the calls did not start"
        await asyncio.sleep(0.05)
    return pids


async def test_a_killed_worker_fails_only_its_item_naming_the_worker(two_workers: Cluster, tmp_path: Path) -> None:
    """Killing a worker process mid-step fails the item it ran with an error naming the worker; the
    items on the other worker succeed."""
    run = asyncio.ensure_future(orchestrator.arun(_hold_plan(tmp_path, "work_killed", two_workers.address, retry=1)))
    victim = (await _when_all_started(tmp_path))[0]
    os.kill(victim, signal.SIGKILL)
    result = await asyncio.wait_for(run, 60)
    step = result.step("hold")
    assert step.status == "failed" and step.items_failed == 1, step.error
    assert step.error is not None and "Dask worker tcp://127.0.0.1:" in step.error and "died while running work_killed:hold" in step.error


async def test_a_killed_worker_s_item_is_retried_and_counted(two_workers: Cluster, tmp_path: Path) -> None:
    """With a retry policy, the dead worker's item runs again and `retries` counts it."""
    run = asyncio.ensure_future(orchestrator.arun(_hold_plan(tmp_path, "work_retried", two_workers.address, retry=2)))
    victim = (await _when_all_started(tmp_path))[0]
    os.kill(victim, signal.SIGKILL)
    result = await asyncio.wait_for(run, 60)
    step = result.step("hold")
    assert (step.status, step.attempts, step.retries, step.items_failed) == ("succeeded", 2, 1, 0)
    assert victim not in step.output


async def test_a_step_timeout_ends_the_worker_running_its_call(two_workers: Cluster, tmp_path: Path) -> None:
    """A call still running at its step's timeout is cancelled and its worker process ended, so the
    worker is free for what comes next instead of finishing the abandoned call."""
    path = tmp_path / "slow.yml"
    (tmp_path / "work_slow.py").write_text(WORK)
    path.write_text(textwrap.dedent(f"""\
        name: slow
        steps:
          - id: slow
            kind: cpu
            timeout: 1s
            call: work_slow:hold
            with: {{folder: "{tmp_path}", n: 0, seconds: 30}}
        """))
    started = time.monotonic()
    result = await orchestrator.arun(orchestrator.plan(path, config=loads_config(config_text(two_workers.address))))
    assert result.step("slow").status == "failed" and "timed out" in (result.step("slow").error or "")
    pid = int((tmp_path / "0.pid").read_text())
    while _alive(pid):
        assert time.monotonic() - started < 15, "the worker running the abandoned call was not ended"
        await asyncio.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_deploy_runs_with_blocking_and_cpu_work_on_the_cluster(two_workers: Cluster, moto_url: str, s3: Any) -> None:
    """playbooks/deploy.yml, its `aws` steps (blocking) and its rendering (cpu) on the workers."""
    from orchestrator.config import Config, TargetSettings
    from orchestrator.emulator import CREDENTIALS
    from orchestrator.sandbox import SandboxSettings, start_sandbox

    dask = {"type": "dask", "address": two_workers.address}
    config = Config.parse({
        "executors": {"non-blocking": {"type": "asyncio"}, "blocking": dask, "cpu": dask},
        "aws": {"endpoint_url": moto_url, "region": "us-east-1"},
    })
    async with start_sandbox(SandboxSettings(seed=3, operation_delay=0.05)) as sandbox:
        result = await orchestrator.arun(
            ROOT / "playbooks" / "deploy.yml", vars={"api": sandbox.url, "bucket": "deploy-dask", "replicas": 4},
            config=config, settings=TargetSettings(aws_credentials=dict(CREDENTIALS)),
        )
    assert result.status == "succeeded", [(s.id, s.error) for s in result.steps if s.error]
    assert {s.id: s.executor for s in result.steps if s.executor == "dask"} == {"configs": "dask", "bucket": "dask", "upload": "dask"}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="deploy-dask")["Contents"]]
    assert len(keys) == 4


async def test_an_unreachable_scheduler_fails_a_50_item_step_once_and_quickly(tmp_path: Path) -> None:
    """Nothing listens at the address: one bounded connect, shared by every item, fails the step in
    under 10 s with the address in the message."""
    from tests.dask.cluster import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    path = tmp_path / "fifty.yml"
    path.write_text(textwrap.dedent("""\
        name: fifty
        steps:
          - id: fifty
            kind: cpu
            for_each: "{{ range(50) }}"
            call: os.path:join
            with: {a: x}
        """))
    started = time.monotonic()
    result = await orchestrator.arun(orchestrator.plan(path, config=loads_config(config_text(address, connect_timeout="2s"))))
    step = result.step("fifty")
    assert time.monotonic() - started < 10
    assert step.status == "failed" and step.error is not None and address in step.error and "cannot reach" in step.error


async def test_with_every_worker_gone_the_step_fails_within_its_timeout_saying_why(cluster: Cluster, tmp_path: Path) -> None:
    """Killing every `dask worker` mid-step fails the step well within its 20 s timeout, with a
    message that says the cluster has no workers. (Last in the module: it leaves no worker.)"""
    cluster.wait_for_workers(2)
    plan = _hold_plan(tmp_path, "work_gone", cluster.address, retry=3, no_workers_timeout="1s")
    started = time.monotonic()
    run = asyncio.ensure_future(orchestrator.arun(plan))
    await _when_all_started(tmp_path)
    cluster.kill_workers()
    result = await asyncio.wait_for(run, 30)
    step = result.step("hold")
    assert time.monotonic() - started < 20
    assert step.status == "failed" and step.error is not None and "has had no workers for 1s" in step.error, step.error


def test_the_mixed_playbook_runs_unchanged_with_blocking_and_cpu_on_the_cluster(two_workers: Cluster, tmp_path: Path) -> None:
    """playbooks/mixed.yml through the CLI with only a configuration file added; its results (through
    the API) equal those of the local pools, and the blocking and cpu items ran in the workers."""
    config = tmp_path / "dask.yml"
    config.write_text(config_text(two_workers.address, blocking="dask"))
    mixed = ROOT / "playbooks" / "mixed.yml"
    done = orchestrate(str(mixed), "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    executors = {s["id"]: s["executor"] for s in json.loads(done.stdout)["steps"]}
    assert (executors["inventory"], executors["sdk"], executors["fingerprints"]) == ("asyncio", "dask", "dask")

    on_dask = orchestrator.run(orchestrator.plan(mixed, config=loads_config(config.read_text())))
    local = orchestrator.run(mixed)
    assert on_dask.status == local.status == "succeeded"

    def without_pids(step: str, result: orchestrator.RunResult) -> list[dict[str, Any]]:
        return [{k: v for k, v in out.items() if k != "pid"} for out in result.step(step).output]

    for step in ("sdk", "fingerprints"):
        assert without_pids(step, on_dask) == without_pids(step, local)
    pids = {out["pid"] for step in ("sdk", "fingerprints") for out in on_dask.step(step).output}
    assert pids <= two_workers.worker_pids()
