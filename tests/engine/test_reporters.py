"""Reporters follow a run through optional hooks; one that fails is switched off alone."""

from __future__ import annotations

from typing import Any

import pytest

import orchestrator
from orchestrator import Reporter

PLAYBOOK = """
name: followed
steps:
  - {id: one, set: 1}
  - {id: many, for_each: [1, 2, 3], set: "{{ item }}"}
"""


class Recorder(Reporter):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def step_finished(self, step: orchestrator.PlannedStep, result: orchestrator.StepResult) -> None:
        self.calls.append(("step_finished", step.id))

    def item_finished(self, step: orchestrator.PlannedStep, index: int, ok: bool) -> None:
        self.calls.append(("item_finished", index))


class Broken(Reporter):
    def __init__(self) -> None:
        self.calls = 0

    def step_finished(self, step: orchestrator.PlannedStep, result: orchestrator.StepResult) -> None:
        self.calls += 1
        raise RuntimeError("disk full")


async def test_a_failing_reporter_is_switched_off_and_the_others_and_the_run_go_on(tmp_path: Any) -> None:
    """The first exception from a reporter's hook switches that reporter off for the rest of the run;
    the reporters beside it still get every hook, and the run succeeds."""
    path = tmp_path / "p.yml"
    path.write_text(PLAYBOOK, encoding="utf-8")
    broken, recorder = Broken(), Recorder()
    result = await orchestrator.arun(path, reporter=[broken, recorder])
    assert result.status == "succeeded"
    assert broken.calls == 1
    # `one` and `many` are independent, so their hooks may interleave: compare as sets, then the order within `many`
    assert sorted(recorder.calls) == sorted([
        ("step_finished", "one"), ("item_finished", 0), ("item_finished", 1), ("item_finished", 2), ("step_finished", "many"),
    ])
    many = [call for call in recorder.calls if call != ("step_finished", "one")]
    assert many[-1] == ("step_finished", "many")


def test_a_method_named_like_a_hook_that_is_not_one_is_refused_when_the_class_is_defined() -> None:
    """A misspelt hook would never be called: defining it is a TypeError naming the real hooks."""
    with pytest.raises(TypeError, match=r"Typo\.step_finish is not a reporter hook; the hooks are run_started, "):

        class Typo(Reporter):
            def step_finish(self, step: Any, result: Any) -> None: ...
