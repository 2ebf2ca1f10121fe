"""The dask executor with clusters it starts itself (`address: local`, `cluster:`), and its configuration."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs

import orchestrator
from orchestrator.config import Config
from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

H = "tests.engine.steps_helpers"
PLAYBOOK = f"""
    name: dask
    steps:
      - id: burn
        kind: cpu
        for_each: [50, 50, 50, 50]
        call: '{H}:burn'
        with: {{ms: "{{{{ item }}}}"}}
      - id: broken
        kind: cpu
        on_error: continue
        call: '{H}:always_fails'
    """


def _config(cpu: dict[str, Any]) -> Config:
    return Config.parse({"executors": {"non-blocking": {"type": "asyncio"}, "blocking": {"type": "threads"}, "cpu": cpu}})


async def test_address_local_starts_one_worker_per_core_and_runs_cpu_steps_there(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """`address: local` with `workers: auto` starts a LocalCluster of one worker process per core;
    cpu steps run there, and a failing call fails its step with the call's own error."""
    plan = plan_of(PLAYBOOK, config=_config({"type": "dask", "address": "local", "workers": "auto"}))
    assert plan.step("burn").executor == "dask"
    with capture_logs() as logs:
        result = await orchestrator.arun(plan)
    burn = result.step("burn")
    assert burn.status == "succeeded" and burn.executor == "dask"
    assert os.getpid() not in burn.output and len(burn.output) == 4
    broken = result.step("broken")
    assert broken.status == "failed" and broken.error is not None and "boom" in broken.error
    connected = next(line for line in logs if line["event"] == "dask.connected")
    assert connected["workers"] == os.cpu_count()


async def test_a_cluster_class_is_started_with_its_options_and_adaptive_scaling(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """`cluster:` names a class started with `options`; `adapt` goes to its adapt()."""
    plan = plan_of(PLAYBOOK, config=_config({
        "type": "dask", "cluster": "distributed.LocalCluster", "adapt": {"minimum": 1, "maximum": 2},
        "options": {"n_workers": 1, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1", "dashboard_address": None},
    }))
    result = await orchestrator.arun(plan)
    assert result.step("burn").status == "succeeded" and os.getpid() not in result.step("burn").output


@pytest.mark.parametrize(("cpu", "message"), [
    ({"type": "dask"}, "needs either `address`"),
    ({"type": "dask", "address": "local", "cluster": "distributed.LocalCluster"}, "not both"),
    ({"type": "dask", "address": "local", "adapt": {"maximum": 2}}, "go with `cluster`"),
    ({"type": "processes", "connect_timeout": "2s"}, "apply to the dask type only"),
])
def test_dask_options_are_checked(cpu: dict[str, Any], message: str) -> None:
    """A dask executor reaches exactly one cluster; its keys belong to it alone."""
    with pytest.raises((ConfigError, ValueError), match=message):
        _config(cpu)


def test_an_unknown_cluster_class_fails_the_step_saying_which(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """A class that does not import fails the steps sent to it, naming the class."""
    plan = plan_of(PLAYBOOK, config=_config({"type": "dask", "cluster": "distributed.NoSuchCluster"}))
    result = orchestrator.run(plan)
    assert "cannot import the Dask cluster class 'distributed.NoSuchCluster'" in (result.step("burn").error or "")
