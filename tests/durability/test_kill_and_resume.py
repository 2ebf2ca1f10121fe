"""A run killed with SIGKILL at any moment resumes to success, and every resource exists exactly once.

`orchestrate playbooks/deploy.yml` runs as a user runs it (a subprocess) against the sandbox API
with 20% of requests failing and 20% of creates losing their response, and an S3 emulator. It is
killed at 20 moments spread over the run (mid-fan-out included; some resumes are killed too), then
`orchestrate resume RUN_ID` runs until it exits 0. Each time the sandbox's own statistics must show
each resource created once and none deleted, and no process the run started may outlive it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.emulator import CREDENTIALS
from orchestrator.sandbox import SandboxProcess, SandboxSettings
from tests.durability.cli_runs import (
    ROOT,
    env_for,
    events,
    kill_and_check_nothing_survives,
    orchestrate,
    start,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

DEPLOY = ROOT / "playbooks" / "deploy.yml"
REPLICAS = 6
EXPECTED = {"networks": 1, "vms": REPLICAS, "load_balancers": 1, "dns_records": REPLICAS, "lb_members": REPLICAS}
MOMENTS = 20


def _call(url: str, method: str = "GET") -> Any:
    """A sandbox endpoint's JSON; its injected faults (503) are retried, as any client would."""
    for _ in range(50):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise
            time.sleep(0.05)
    raise AssertionError(f"{url}: 503 fifty times")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    settings = SandboxSettings(fault_rate=0.2, lost_rate=0.2, operation_delay=0.05, seed=3)
    with SandboxProcess(settings) as server:
        assert server.url is not None
        yield server.url


def _env(folder: Path) -> dict[str, str]:
    return env_for(
        folder / "runs.sqlite",
        AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"], AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"],
    )


def _succeeded_before_its_kill(run_id: str, code: int | None, stderr: str) -> bool:
    """Whether a resume was refused because the run had recorded its success: the kill came as
    its process was exiting."""
    return code == 2 and f"run {run_id} succeeded: there is nothing to resume" in stderr


class Deploy:
    """One deploy of its own (its names, its bucket, its history) against the shared sandbox."""

    def __init__(self, name: str, sandbox: str, config: Path, folder: Path) -> None:
        self.name, self.folder, self.env = name, folder, _env(folder)
        self.args = [
            str(DEPLOY), "--var", f"api={sandbox}", "--var", f"replicas={REPLICAS}", "--var", f"prefix={name}",
            "--var", f"bucket=bucket-{name}", "--var", "max_vms=100000", "--config", str(config),
        ]

    def killed_at(self, fraction: float, run_seconds: float, kill_resume_too: bool) -> dict[str, Any]:
        """Kill the run at `fraction` of its usual duration, then resume it until it succeeds."""
        log = self.folder / "run.log"
        proc = start(*self.args, env=self.env, log=log)
        run_id = wait_for(log, proc, "run.started")["run_id"]
        time.sleep(run_seconds * fraction)
        survivors_checked = 0
        if proc.poll() is None:
            survivors_checked += kill_and_check_nothing_survives(proc)
            ended = sorted({e["step"] for e in events(log) if e.get("event") == "step.finished"})
        else:  # it ended first (a fast run): nothing to resume
            assert proc.returncode == 0, log.read_text()[-3000:]
            return {"deploy": self.name, "killed": False, "resumes": 0, "children_killed": 0}
        resumes, why = 0, ""
        while True:
            resumes += 1
            assert resumes <= 5, f"{self.name}: run {run_id} did not succeed after 5 resumes; the last: {why}"
            if kill_resume_too and resumes == 1:
                resume_log = self.folder / "resume.log"
                resumed = start("resume", run_id, env=self.env, log=resume_log)
                try:
                    wait_for(resume_log, resumed, "run.started")
                except AssertionError:
                    if _succeeded_before_its_kill(run_id, resumed.returncode, resume_log.read_text()):
                        break
                    raise
                time.sleep(run_seconds / 4)
                if resumed.poll() is None:
                    survivors_checked += kill_and_check_nothing_survives(resumed)
                    continue
                assert resumed.returncode == 0, resume_log.read_text()[-3000:]
                break
            done = orchestrate("resume", run_id, "--format", "json", env=self.env)
            if _succeeded_before_its_kill(run_id, done.returncode, done.stderr):
                break
            assert done.returncode in (0, 1), done.stderr[-3000:]
            out = json.loads(done.stdout)
            why = str([(s["id"], s["error"]) for s in out["steps"] if s["status"] == "failed"])
            if done.returncode == 0:
                assert out["run_id"] == run_id and out["status"] == "succeeded"
                break
        return {"deploy": self.name, "killed": True, "after": ended, "resumes": resumes, "children_killed": survivors_checked}

    def assert_each_resource_once(self, sandbox: str, s3: Any) -> None:
        """The sandbox holds exactly one of each resource this deploy names, and S3 one config per VM."""
        named = {
            kind: Counter(r["name"] for r in _call(f"{sandbox}/v1/{path}")["items"] if r["name"].startswith(f"{self.name}-"))
            for kind, path in (("networks", "networks"), ("vms", "vms"), ("load_balancers", "load_balancers"),
                               ("dns_records", "dns/records"))
        }
        assert named["networks"] == {f"{self.name}-net": 1}, named
        assert named["load_balancers"] == {f"{self.name}-lb": 1}, named
        assert named["vms"] == {f"{self.name}-{i}": 1 for i in range(REPLICAS)}, named
        assert named["dns_records"] == {f"{self.name}-{i}.example.internal": 1 for i in range(REPLICAS)}, named
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=f"bucket-{self.name}").get("Contents", [])]
        assert len(keys) == REPLICAS, keys


def test_deploy_killed_at_twenty_moments_resumes_to_success_creating_each_resource_once(
    sandbox: str, moto_url: str, s3: Any, tmp_path: Path
) -> None:
    default = (ROOT / "config" / "default.yml").read_text()
    assert "  endpoint_url: null" in default
    config = tmp_path / "config.yml"
    config.write_text(default.replace("  endpoint_url: null", f"  endpoint_url: '{moto_url}'"))  # the S3 emulator
    _call(f"{sandbox}/v1/_reset", "POST")
    calibrate = Deploy("calibrate", sandbox, config, tmp_path / "calibrate")
    calibrate.folder.mkdir()
    done = orchestrate(*calibrate.args, "--format", "json", env=calibrate.env)
    assert done.returncode == 0, done.stderr[-3000:]
    run_seconds = float(json.loads(done.stdout)["duration_s"])  # the kills are spread over this
    deploys: list[Deploy] = []

    def moment(m: int) -> dict[str, Any]:
        """Kill a deploy at moment `m` of 20 and resume it. A run that ends before its kill (the
        faults make some faster than the calibration) is deployed again, killed earlier."""
        for attempt, suffix in enumerate(("", "b", "c", "d")):
            folder = tmp_path / f"k{m}{suffix}"
            folder.mkdir()
            deploy = Deploy(f"k{m}{suffix}", sandbox, config, folder)
            deploys.append(deploy)
            report = deploy.killed_at((m + 0.5) / MOMENTS * 0.7**attempt, run_seconds, kill_resume_too=m % 4 == 1)
            if report["killed"]:
                break
        return report

    # Four at a time: each mostly waits (backoff, operations), and the machine has two cores.
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(moment, range(MOMENTS)))
    for deploy in [calibrate, *deploys]:
        deploy.assert_each_resource_once(sandbox, s3)
    stats = _call(f"{sandbox}/v1/_stats")
    assert stats["created"] == {k: v * (len(deploys) + 1) for k, v in EXPECTED.items()}, stats
    assert not any(stats["deleted"].values()), stats
    for report in reports:  # shown with `pytest -s`: where each kill fell, and what it took
        print(report)
    assert all(r["killed"] for r in reports), reports
    assert len({tuple(r["after"]) for r in reports}) >= 8, reports  # spread over the run: many different points
    assert stats["lost_responses"] > 0 and stats["idempotent_replays"] > 0


def test_a_wide_fan_out_killed_half_way_runs_only_the_unfinished_items_on_resume(tmp_path: Path) -> None:
    """10,000 creates, killed when about half are made: the resume sends the rest, and only the few
    that were in flight (or not yet committed to the journal) twice, which the API replays by their
    Idempotency-Key. The sandbox counts both."""
    play = tmp_path / "wide.yml"
    play.write_text("""
name: wide
steps:
  - id: records
    for_each: "{{ range(10000) }}"
    concurrency: 50
    http: {method: POST, url: "{{ api }}/v1/dns/records", json: {name: "r{{ item }}.example", type: A, value: 10.0.0.1}, expect: [201]}
""")
    env = env_for(tmp_path / "runs.sqlite")
    with SandboxProcess(SandboxSettings()) as server:
        log = tmp_path / "run.log"
        proc = start(str(play), "--var", f"api={server.url}", env=env, log=log)
        run_id = wait_for(log, proc, "run.started")["run_id"]
        while _call(f"{server.url}/v1/_stats")["created"]["dns_records"] < 5000:
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.01)
        kill_and_check_nothing_survives(proc)
        before = _call(f"{server.url}/v1/_stats")
        done = orchestrate("resume", run_id, "--format", "json", env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        after = _call(f"{server.url}/v1/_stats")
    (records,) = json.loads(done.stdout)["steps"]
    resumed = records["items_resumed"]
    print(f"killed at {before['created']['dns_records']:,} created; resumed {resumed:,} from the record; "
          f"sent {after['requests']['by_method']['POST'] - before['requests']['by_method']['POST']:,} more; "
          f"{after['idempotent_replays']:,} replayed")
    assert 4000 <= resumed <= before["created"]["dns_records"]
    assert after["requests"]["by_method"]["POST"] - before["requests"]["by_method"]["POST"] == 10000 - resumed
    assert after["created"]["dns_records"] == 10000  # each once: those sent twice were replayed
    assert after["idempotent_replays"] == before["created"]["dns_records"] - resumed
