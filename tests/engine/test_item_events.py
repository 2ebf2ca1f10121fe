"""A `for_each` step's items reach reporters as counts (`items_finished`), and one by one
(`item_finished`) only for reporters that ask for that."""

from __future__ import annotations

from typing import Any

import orchestrator
from orchestrator import Reporter
from orchestrator.engine.events import Reporters, item_hook

ITEMS = 20_000


class Counts(Reporter):
    """Follows items by their counts only."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def items_finished(self, step: orchestrator.PlannedStep, succeeded: int, failed: int) -> None:
        self.calls.append((step.id, succeeded, failed))


class EachItem(Reporter):
    def __init__(self) -> None:
        self.seen: list[tuple[int, bool]] = []

    def item_finished(self, step: orchestrator.PlannedStep, index: int, ok: bool) -> None:
        self.seen.append((index, ok))


class StepsOnly(Reporter):
    def step_finished(self, step: orchestrator.PlannedStep, result: orchestrator.StepResult) -> None: ...


def fan_out(items: int, fails_at: int | None = None) -> orchestrator.Playbook:
    check = f"\n    assert: {{that: 'index != {fails_at}'}}\n    on_error: continue" if fails_at is not None else "\n    set: '{{ item }}'"
    return orchestrator.loads(f"""
name: counted
steps:
  - id: fan
    for_each: "{{{{ range({items}) }}}}"
    concurrency: 10{check}
""")


def test_counts_arrive_while_items_run_and_once_at_the_end_not_per_item() -> None:
    """A reporter with `items_finished` sees counts that only grow, ending with every item, in far
    fewer calls than there are items."""
    counts = Counts()
    result = orchestrator.run(fan_out(ITEMS), reporter=counts)
    assert result.status == "succeeded"
    assert counts.calls[-1] == ("fan", ITEMS, 0)
    succeeded = [done for _, done, _ in counts.calls]
    assert succeeded == sorted(succeeded)
    assert len(counts.calls) < ITEMS / 2


def test_failed_items_are_counted_apart() -> None:
    """The last counts say how many items failed, beside those that succeeded."""
    counts = Counts()
    result = orchestrator.run(fan_out(50, fails_at=7), reporter=counts)
    assert result.step("fan").items_failed == 1
    assert counts.calls[-1] == ("fan", 49, 1)


def test_a_reporter_that_follows_each_item_still_gets_every_one() -> None:
    """`item_finished` keeps working for reporters that define it, next to one that takes counts."""
    each, counts = EachItem(), Counts()
    orchestrator.run(fan_out(300, fails_at=3), reporter=[each, counts])
    assert sorted(each.seen) == [(i, i != 3) for i in range(300)]
    assert counts.calls[-1] == ("fan", 299, 1)


def test_the_per_item_hook_is_skipped_when_no_reporter_defines_it() -> None:
    """`item_hook` is None for reporters that would do nothing per item, so the engine calls nothing."""
    assert item_hook(Reporter()) is None
    assert item_hook(Reporters([StepsOnly(), Counts()])) is None
    each = EachItem()
    hook = item_hook(Reporters([StepsOnly(), each]))
    assert hook is not None
    hook(orchestrator.plan(fan_out(1)).steps[0], 0, True)
    assert each.seen == [(0, True)]


def test_an_object_that_is_no_reporter_subclass_but_has_the_hook_is_called() -> None:
    """Duck-typed reporters keep working: the hook is theirs, called per item."""

    class Duck:
        def __init__(self) -> None:
            self.items = 0

        def item_finished(self, step: Any, index: int, ok: bool) -> None:
            self.items += 1

    duck = Duck()
    orchestrator.run(fan_out(25), reporter=duck)  # type: ignore[arg-type]
    assert duck.items == 25
