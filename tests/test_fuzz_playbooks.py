"""Mutated playbooks never crash the CLI: a dry run plans them (0) or refuses them with located errors (2).

Hypothesis starts from the valid corpus and breaks it the ways people do: a key deleted or renamed,
a value replaced by a scalar, list or mapping of the wrong kind, a step duplicated, stray text typed
into a line, a file cut short. Whatever comes out, `orchestrate --dry-run` must exit 0 or 2 (1 is
allowed by the contract, though a dry run never runs a step), print no traceback, and on 2 print
only `FILE:LINE:COL: message` lines.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import re
import shutil
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from orchestrator.cli.main import main
from tests.corpus import VALID, valid_playbooks

if TYPE_CHECKING:
    from pathlib import Path

DIAGNOSTIC = re.compile(r"^.+:\d+:\d+: .+$")
BASES = {p.name: p.read_text(encoding="utf-8") for p in valid_playbooks()}
SECTIONS = ("steps", "rollback", "finally")

# Names a playbook author might type, so renames and inserted mappings reach the model's branches.
KEYS = (
    "name", "description", "vars", "limits", "defaults", "steps", "rollback", "finally", "id", "kind", "needs",
    "when", "for_each", "concurrency", "limit", "retry", "timeout", "on_error", "read_only", "with", "call",
    "shell", "http", "wait_until", "aws", "sleep", "log", "assert", "set", "attempts", "backoff", "delay",
    "max_delay", "jitter", "retry_on_status", "rate", "argv", "env", "cwd", "stdin", "check", "message", "level",
    "that", "url", "method", "expect", "until", "interval", "service", "operation", "params", "retyr",
)
# Values with meaning to the loader or the planner: templates, durations, rates, kinds, targets.
MEANINGFUL = (
    "{{ steps.first.output }}", "{{ steps.nope.output }}", "{{ item }}", "{{ index }}", "{{ range(3) }}",
    "{{ vars }}", "{{ env.HOME }}", "{{ steps }}", "{{", "}}", "{% for x in y %}", "{{ 1 / 0 }}", "{{ a.b( }}",
    "steps.fetch.output", "5 parsecs", "10ms", "2s", "1m", "-1", "50/s", "0/s", "fast", "cpu", "blocking",
    "non-blocking", "corpus_valid_tasks:crunch", "corpus_valid_tasks:fetch", "corpus_valid_tasks:missing",
    "no_such_module:run", "http://127.0.0.1:9/x", "/relative", "GET", "FETCH", "s3", "put_object", "",
    "a-b", "UPPER", "x" * 200,
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(MEANINGFUL),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=3)
    ),
    max_leaves=4,
)
# Characters that matter to YAML and to templates, plus a few ordinary ones.
stray_text = st.text(alphabet=":-[]{}#&*!|>'\"%@`,?\t\n {}abz019_", min_size=1, max_size=12)


def _slots(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place a value sits: (parent path..., key or index)."""
    out: list[tuple[Any, ...]] = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, child in items:
        out.append((*path, key))
        out.extend(_slots(child, (*path, key)))
    return out


def _parent(doc: Any, slot: tuple[Any, ...]) -> Any:
    for part in slot[:-1]:
        doc = doc[part]
    return doc


def _mutate_document(doc: Any, data: st.DataObject) -> Any:
    """One structural change: delete, replace, rename a key, or duplicate a step."""
    how = data.draw(st.sampled_from(["delete", "replace", "rename", "duplicate_step"]), label="mutation")
    if how == "duplicate_step" and isinstance(doc, dict):
        sections = [s for s in SECTIONS if isinstance(doc.get(s), list) and doc[s]]
        if sections:
            source = doc[data.draw(st.sampled_from(sections), label="from")]
            step = copy.deepcopy(data.draw(st.sampled_from(source), label="step"))
            target = doc[data.draw(st.sampled_from(sections), label="to")]
            target.insert(data.draw(st.integers(0, len(target)), label="at"), step)
            return doc
    slots = _slots(doc)
    if not slots:
        return data.draw(values, label="whole document")
    slot = data.draw(st.sampled_from(slots), label="slot")
    parent = _parent(doc, slot)
    if how == "delete":
        del parent[slot[-1]]
    elif how == "rename" and isinstance(parent, dict):
        new = data.draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), label="new key")
        parent[new] = parent.pop(slot[-1])
    else:
        parent[slot[-1]] = data.draw(values, label="value")
    return doc


def _mutate_text(text: str, data: st.DataObject) -> str:
    """One textual change: stray characters typed into a line, or the file cut short."""
    if data.draw(st.booleans(), label="truncate"):
        return text[: data.draw(st.integers(0, max(len(text) - 1, 0)), label="cut at")]
    lines = text.split("\n")
    row = data.draw(st.integers(0, len(lines) - 1), label="line")
    col = data.draw(st.integers(0, len(lines[row])), label="col")
    lines[row] = lines[row][:col] + data.draw(stray_text, label="typed") + lines[row][col:]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the mutated playbook, with the corpus's helper modules beside it (so `call` resolves)."""
    folder = tmp_path_factory.mktemp("fuzz")
    for module in VALID.glob("*.py"):
        shutil.copy(module, folder / module.name)
    return folder


@settings(
    max_examples=2000 if os.environ.get("CI") else 300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_mutated_playbooks_plan_or_fail_with_located_errors(workdir: Path, data: st.DataObject) -> None:
    """A dry run of any mutation exits 0, 1 or 2, never with a traceback; on 2 every line is FILE:LINE:COL: message."""
    base = data.draw(st.sampled_from(sorted(BASES)), label="base")
    text = BASES[base]
    structural = data.draw(st.integers(0, 3), label="structural changes")
    textual = data.draw(st.integers(0 if structural else 1, 2), label="textual changes")
    if structural:
        doc = yaml.safe_load(text)
        for _ in range(structural):
            doc = _mutate_document(doc, data)
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    for _ in range(textual):
        text = _mutate_text(text, data)
    note(text)
    path = workdir / "mutated.yml"
    path.write_text(text, encoding="utf-8")

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(path), "--dry-run"])

    event(f"exit {code}")
    assert code in (0, 1, 2), err.getvalue()
    assert "Traceback" not in out.getvalue() + err.getvalue()
    if code == 2:
        lines = err.getvalue().splitlines()
        assert lines, "exit 2 with no diagnostic"
        bad = [line for line in lines if not DIAGNOSTIC.match(line)]
        assert bad == [], err.getvalue()
