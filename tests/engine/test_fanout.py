"""for_each: items are pulled by a fixed set of workers, so task count stays bounded."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orchestrator
from tests.engine import steps_helpers

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

H = "tests.engine.steps_helpers"


async def test_ten_thousand_items_never_exceed_concurrency_live_tasks(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """10,000 items at concurrency 50 never have more than 50 (+ a few scheduler tasks) alive at once."""
    steps_helpers.LIVE_TASKS.clear()
    plan = plan_of(f"""
        name: wide
        steps:
          - id: items
            for_each: "{{{{ range(10000) }}}}"
            concurrency: 50
            call: '{H}:count_tasks'
            with: {{item: "{{{{ item }}}}"}}
        """)
    result = await orchestrator.arun(plan)
    assert result.status == "succeeded"
    assert result.step("items").items == 10_000
    assert result.step("items").output[:3] == [0, 1, 2] and result.step("items").output[-1] == 9_999
    assert len(steps_helpers.LIVE_TASKS) == 10_000
    assert max(steps_helpers.LIVE_TASKS) <= 50 + 5


async def test_outputs_keep_item_order_whatever_the_finishing_order(plan_of: Callable[..., orchestrator.Plan]) -> None:
    """A for_each step's output lists item outputs in item order."""
    plan = plan_of(f"""
        name: order
        steps:
          - id: items
            for_each: [0.2, 0.1, 0.0]
            call: '{H}:slow'
            with: {{seconds: "{{{{ item }}}}"}}
          - id: idx
            for_each: [a, b, c]
            set: "{{{{ index }}}}-{{{{ item }}}}"
        """)
    result = await orchestrator.arun(plan)
    assert result.step("items").output == ["done"] * 3
    assert result.step("idx").output == ["0-a", "1-b", "2-c"]


async def test_a_failed_item_stops_new_items_and_keeps_finished_outputs(plan_of: Callable[..., orchestrator.Plan], tmp_path: Path) -> None:
    """After an item fails, no new items start; outputs of items that finished stay for rollback."""
    plan = plan_of(f"""
        name: partial
        steps:
          - id: items
            for_each: [ok, ok, bad, ok, ok, ok]
            concurrency: 1
            call: '{H}:record'
            with: {{path: "{tmp_path}/log", text: "{{{{ item if item == 'ok' else undefined_name }}}}"}}
        """.replace("undefined_name", "item.nope"))
    result = await orchestrator.arun(plan)
    step = result.step("items")
    assert result.status == "failed" and step.status == "failed"
    assert step.output[:2] == ["ok", "ok"] and step.output[3:] == [None, None, None]
    assert step.error is not None and "1 of 6 items failed" in step.error and "[2]" in step.error
    assert (tmp_path / "log").read_text() == "ok\nok\n"


async def test_after_a_failure_no_worker_takes_a_new_item(plan_of: Callable[..., orchestrator.Plan], tmp_path: Path) -> None:
    """With four workers, the first failure stops all of them from starting further items."""
    plan = plan_of(f"""
        name: stop
        steps:
          - id: items
            for_each: "{{{{ range(40) }}}}"
            concurrency: 4
            call: '{H}:record'
            with: {{path: "{tmp_path}/log", text: "{{{{ item if item != 0 else item.nope }}}}"}}
        """)
    result = await orchestrator.arun(plan)
    step = result.step("items")
    assert step.status == "failed" and "not started" in str(step.error)
    log = tmp_path / "log"
    ran = log.read_text().split() if log.exists() else []
    assert len(ran) <= 4, ran  # at most the items already in flight when item 0 failed
