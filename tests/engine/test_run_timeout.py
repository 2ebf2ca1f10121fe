"""A run's `timeout:` bounds its main steps: when it passes, the steps still running are cancelled
and say why, the run fails, and `rollback` and `finally` still run."""

from __future__ import annotations

import time

import pytest

import orchestrator

H = "tests.engine.steps_helpers"


def playbook(timeout: str = "") -> str:
    return f"""
name: bounded
{timeout}
steps:
  - id: quick
    set: 1
  - id: slow
    needs: [quick]
    call: {H}:slow
    with: {{seconds: 30}}
  - id: after
    needs: [slow]
    set: 2
rollback:
  - id: undo
    set: undone
finally:
  - id: last
    set: done
"""


async def test_when_the_run_timeout_passes_running_steps_are_cancelled_and_the_run_fails() -> None:
    started = time.monotonic()
    result = await orchestrator.arun(orchestrator.loads(playbook("timeout: 300ms")))
    assert time.monotonic() - started < 10
    assert result.status == "failed" and result.exit_code == 1
    assert [(s.id, s.status) for s in result.steps] == [
        ("quick", "succeeded"), ("slow", "cancelled"), ("after", "cancelled"), ("undo", "succeeded"), ("last", "succeeded"),
    ]
    assert result.step("slow").error == "cancelled: the run's timeout of 0.3s passed"
    assert result.step("after").error == "not started"


async def test_the_timeout_given_to_arun_replaces_the_playbooks() -> None:
    result = await orchestrator.arun(orchestrator.loads(playbook("timeout: 1h")), timeout=0.2)
    assert result.status == "failed" and result.step("slow").error == "cancelled: the run's timeout of 0.2s passed"


async def test_a_run_that_ends_in_time_is_not_touched_by_its_timeout() -> None:
    text = playbook("timeout: 5s").replace("seconds: 30", "seconds: 0.05")
    result = await orchestrator.arun(orchestrator.loads(text))
    assert result.status == "succeeded" and result.step("undo").status == "skipped"


@pytest.mark.parametrize("value", ["0", "-1s", "soon"])
def test_a_timeout_that_is_not_a_positive_duration_is_a_located_playbook_error(value: str) -> None:
    with pytest.raises(orchestrator.PlaybookError) as info:
        orchestrator.loads(playbook(f"timeout: {value}"), file="bounded.yml")
    assert str(info.value).startswith("bounded.yml:3:10: timeout:"), str(info.value)
