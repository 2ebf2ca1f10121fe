"""With `outputs="read"` (what the CLI uses), a step keeps its output only if a template reads it,
so a fan-out of many requests holds no responses; every reader a playbook can have still sees what
it reads. By default every step keeps its output, for scripts that read results."""

from __future__ import annotations

import orchestrator

PLAYBOOK = """
name: outputs
steps:
  - id: unread
    for_each: [1, 2, 3]
    set: "{{ item * 10 }}"
  - id: single
    set: alone
  - id: read_by_params
    set: [1, 2]
  - id: read_by_when
    set: true
  - id: read_by_for_each
    set: [4, 5]
  - id: reader
    when: "{{ steps.read_by_when.output }}"
    for_each: "{{ steps.read_by_for_each.output }}"
    set: "{{ steps.read_by_params.output | length + item }}"
  - id: read_by_rollback
    set: 7
  - id: read_by_wait
    set: 200
rollback:
  - id: undo
    set: "{{ steps.read_by_rollback.output }}"
finally:
  - id: last
    set: "{{ steps['read_by_wait'].output }}"
"""


async def outputs_of(text: str, **options: object) -> dict[str, object]:
    result = await orchestrator.arun(orchestrator.loads(text), **options)  # type: ignore[arg-type]
    assert result.status == "succeeded", [s.error for s in result.steps]
    return {s.id: s.output for s in result.steps}


async def test_only_outputs_a_template_reads_are_kept() -> None:
    seen = await outputs_of(PLAYBOOK, outputs="read")
    assert seen["unread"] is None and seen["single"] is None
    assert seen["read_by_params"] == [1, 2] and seen["read_by_when"] is True and seen["read_by_for_each"] == [4, 5]
    assert seen["read_by_rollback"] == 7 and seen["read_by_wait"] == 200
    assert seen["reader"] is None  # read by no one itself
    assert seen["last"] is None


async def test_every_output_is_kept_by_default() -> None:
    seen = await outputs_of(PLAYBOOK)
    assert seen["unread"] == [10, 20, 30] and seen["single"] == "alone" and seen["reader"] == [6, 7]


async def test_a_template_that_may_read_any_step_keeps_them_all() -> None:
    for reads_all in ("{{ steps | length }}", "{{ steps[name].output }}", "{% for s in steps %}{{ s }}{% endfor %}"):
        text = PLAYBOOK.replace('set: "{{ steps[\'read_by_wait\'].output }}"', f'set: "{reads_all}"')
        text = text.replace("name: outputs", "name: outputs\nvars: {name: single}")
        seen = await outputs_of(text, outputs="read")
        assert seen["unread"] == [10, 20, 30] and seen["single"] == "alone", reads_all


def test_a_condition_a_wait_evaluates_later_counts_as_a_reader() -> None:
    plan = orchestrator.plan(orchestrator.loads("""
name: deferred
steps:
  - id: expected
    set: done
  - id: wait
    wait_until: {url: "http://127.0.0.1:9/ops", until: "response.json.status == steps.expected.output"}
"""))
    assert plan.outputs_read == frozenset({"expected"})
