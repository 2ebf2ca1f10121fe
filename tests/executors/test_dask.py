"""The dask executor: cpu steps on a real Dask LocalCluster on 127.0.0.1."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import orchestrator
from orchestrator.config import Config

if TYPE_CHECKING:
    from collections.abc import Callable

H = "tests.engine.steps_helpers"


async def test_cpu_steps_run_on_a_local_dask_cluster(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """With `cpu: {type: dask, address: local}` cpu steps run in Dask worker processes and say so."""
    config = Config.model_validate({"executors": {
        "non-blocking": {"type": "asyncio"},
        "blocking": {"type": "threads"},
        "cpu": {"type": "dask", "address": "local", "workers": 2},
    }})
    plan = plan_of(f"""
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
        """, config=config)
    assert plan.step("burn").executor == "dask"
    result = await orchestrator.arun(plan)
    burn = result.step("burn")
    assert burn.status == "succeeded" and burn.executor == "dask"
    assert os.getpid() not in burn.output and len(burn.output) == 4
    broken = result.step("broken")
    assert broken.status == "failed" and broken.error is not None and "boom" in broken.error
