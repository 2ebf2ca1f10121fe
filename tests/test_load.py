"""Load: strict, located, every problem at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import orchestrator

if TYPE_CHECKING:
    from pathlib import Path


def test_every_problem_is_reported_with_its_line_and_column(tmp_path: Path) -> None:
    """Several mistakes in one file give one located diagnostic each, in file order."""
    path = tmp_path / "bad.yml"
    path.write_text(
        "name: bad\n"
        "steps:\n"
        "  - id: First\n"
        "    set: 1\n"
        "  - id: b\n"
        "    retyr: 3\n"
        "    set: 1\n"
        "  - id: c\n"
        "    kind: cpus\n"
        "    timeout: 5 parsecs\n"
        "    set: 1\n"
    )
    with pytest.raises(orchestrator.PlaybookError) as caught:
        orchestrator.load(path)
    lines = [str(d) for d in caught.value.diagnostics]
    assert lines[0] == f"{path}:3:9: steps[0].id: expected an id of a-z, 0-9, '_' and '-', got 'First'"
    assert lines[1] == f"{path}:6:5: steps[1]: unknown key 'retyr' (did you mean 'retry'?)"
    assert lines[2].startswith(f"{path}:9:11: steps[2].kind: expected 'non-blocking', 'blocking' or 'cpu', got 'cpus'")
    assert lines[3].startswith(f"{path}:10:14: steps[2].timeout: expected a duration")
    assert len(lines) == 4


def test_loose_input_is_normalised_once(tmp_path: Path) -> None:
    """Durations, rates and `retry: 3` shorthand become numbers and full policies."""
    pb = orchestrator.loads(
        "name: ok\nlimits: {api: {rate: 600/m, concurrency: 2}}\n"
        "steps:\n  - {id: a, timeout: 250ms, retry: 3, set: 1}\n",
        file=str(tmp_path / "ok.yml"),
    )
    step = pb.section("steps")[0]
    assert step.timeout == 0.25 and step.retry is not None and step.retry.attempts == 3 and step.retry.backoff == "exponential"
    assert pb.limits["api"].rate == 10.0


def test_yaml_syntax_errors_are_located(tmp_path: Path) -> None:
    """A YAML syntax error names the line and column where the parser stopped."""
    with pytest.raises(orchestrator.PlaybookError) as caught:
        orchestrator.loads("name: x\nsteps:\n  - id: a\n    set: [1, 2\n", file="x.yml")
    (diag,) = caught.value.diagnostics
    assert diag.file == "x.yml" and diag.line == 5 and "YAML syntax error" in diag.message
