"""Templates read and compute, but can neither change shared state nor run away with the loop.

Each hostile template below fails its render at once with a message saying what the cap is,
instead of computing for minutes on the event loop thread (where it would stop every timeout and
Ctrl-C) or emptying an output that rollback needs.
"""

from __future__ import annotations

import pickle
import time
from typing import TYPE_CHECKING

import pytest

import orchestrator
from orchestrator.errors import TemplateError
from orchestrator.templates import compile_template

if TYPE_CHECKING:
    from pathlib import Path

SCOPE = {"steps": {"made": {"output": ["vm-1", "vm-2"]}}, "vars": {"size": 3}, "env": {"HOME": "/root"}}

COSTLY = {
    "loop over a huge range": ("{% for i in range(10**10) %}x{% endfor %}", "at most 1,000,000 items"),
    "sum of a huge range": ("{{ range(10**10) | sum }}", "at most 1,000,000 items"),
    "list of a huge range": ("{{ range(10**9) | list }}", "at most 1,000,000 items"),
    "join of a huge range": ("{{ range(10**9) | join(',') }}", "at most 1,000,000 items"),
    "string repetition": ("{{ 'a' * 10**10 }}", "at most 10,000,000 characters or items"),
    "repetition, number first": ("{{ 10**10 * 'a' }}", "at most 10,000,000 characters or items"),
    "list repetition": ("{{ [0] * 10**9 }}", "at most 10,000,000 characters or items"),
    "huge power": ("{{ 9 ** 9999999 }}", "numbers of at most 100,000 bits"),
    "percent format width": ("{{ '%1999999999d' % 1 }}", "width or precision may be at most 10,000"),
    "percent format precision": ("{{ '%.1999999999f' % 1.5 }}", "width or precision may be at most 10,000"),
    "format filter width": ("{{ '%1999999999d' | format(1) }}", "width or precision may be at most 10,000"),
    "str.format width": ("{{ '{:>1999999999}'.format(1) }}", "width or precision may be at most 10,000"),
    "str.format nested width": ("{{ '{:{w}}'.format(1, w='1999999999') }}", "width or precision may be at most 10,000"),
}

MUTATIONS = {
    "clear an output": "{{ steps.made.output.clear() }}",
    "append to an output": "{{ steps.made.output.append('x') }}",
    "pop an output": "{{ steps.made.output.pop() }}",
    "update vars": "{{ vars.update({'size': 0}) }}",
    "setdefault in vars": "{{ vars.setdefault('new', 1) }}",
    "pop from env": "{{ env.pop('HOME') }}",
    "clear the steps scope": "{{ steps.clear() }}",
}


@pytest.mark.parametrize(("source", "says"), COSTLY.values(), ids=COSTLY.keys())
def test_a_template_that_asks_for_unbounded_work_fails_at_once_naming_the_cap(source: str, says: str) -> None:
    """A range iterated inside a template, a repetition, a power or a format width past its cap is
    a failed render within a fraction of a second, not minutes of CPU and gigabytes."""
    template = compile_template(source, "steps[0].set", expression=False)
    started = time.process_time()
    with pytest.raises(TemplateError, match=says):
        template.render(SCOPE)
    assert time.process_time() - started < 0.5


@pytest.mark.parametrize("source", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_a_template_cannot_change_outputs_vars_or_env(source: str) -> None:
    """Outputs, vars and env are read-only to templates: calling a mutating method is refused and
    nothing changes."""
    scope = {"steps": {"made": {"output": ["vm-1", "vm-2"]}}, "vars": {"size": 3}, "env": {"HOME": "/root"}}
    with pytest.raises(TemplateError, match="unsafe"):
        compile_template(source, "steps[0].set", expression=False).render(scope)
    assert scope == {"steps": {"made": {"output": ["vm-1", "vm-2"]}}, "vars": {"size": 3}, "env": {"HOME": "/root"}}


def test_everyday_templates_within_the_caps_still_work() -> None:
    """The caps leave ordinary use alone: small ranges, repetition, powers and formats."""
    render = {
        "{{ range(3) | list }}": [0, 1, 2],
        "{{ 'ab' * 3 }}": "ababab",
        "{{ 2 ** 10 }}": 1024,
        "{{ '%05d' % 42 }}": "00042",
        "{{ '%-6s|' | format('vm') }}": "vm    |",
        "{{ '{:>4}'.format(7) }}": "   7",
        "{{ steps.made.output | length }}": 2,
        "{% for i in range(3) %}{{ i }}{% endfor %}": "012",
    }
    for source, expected in render.items():
        assert compile_template(source, "t", expression=False).render(SCOPE) == expected, source


def test_a_template_whose_value_is_a_range_gives_pythons_own_lazy_range() -> None:
    """`for_each: "{{ range(10**12) }}"` hands the engine a plain lazy range (it pulls items one by
    one), and a range in a call's arguments pickles to a worker process as a range."""
    value = compile_template("{{ range(10**12) }}", "steps[0].for_each", expression=False).render(SCOPE)
    assert type(value) is range and len(value) == 10**12
    nested = compile_template("{{ [range(3)] }}", "t", expression=False).render(SCOPE)
    assert pickle.loads(pickle.dumps(nested[0])) == range(3)


async def test_rollback_still_sees_what_was_made_after_a_template_tried_to_empty_it(tmp_path: Path) -> None:
    """A step whose template tries to clear the list of created VMs fails; rollback then reads
    the list whole, so it can undo every VM."""
    playbook = tmp_path / "p.yml"
    playbook.write_text(
        "name: keep outputs\n"
        "steps:\n"
        "  - {id: made, set: [vm-1, vm-2, vm-3]}\n"
        "  - {id: vandal, set: '{{ steps.made.output.clear() }}'}\n"
        "rollback:\n"
        "  - {id: undo, set: '{{ steps.made.output | length }}'}\n",
        encoding="utf-8",
    )
    result = await orchestrator.arun(playbook)
    assert result.status == "failed"
    vandal = result.step("vandal")
    assert vandal.status == "failed" and vandal.error is not None and "unsafe" in vandal.error
    assert result.step("undo").output == 3
    assert result.step("made").output == ["vm-1", "vm-2", "vm-3"]
