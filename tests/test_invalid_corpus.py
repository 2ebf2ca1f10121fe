"""The malformed-playbook corpus: every file is refused with a located, readable diagnostic.

Each file in `tests/corpus/invalid/` names on its first line the `LINE:COL` and a fragment of the
message `orchestrate` must print (see `tests/corpus/__init__.py`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from tests.corpus import INVALID, Expected, expectation, invalid_cases

ROOT = Path(__file__).resolve().parent.parent
DIAGNOSTIC = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")
CASES = invalid_cases()


def _matching(err: str, case: Expected) -> list[str]:
    prefix = f"{case.path}:{case.line}:{case.col}: "
    return [line for line in err.splitlines() if line.startswith(prefix) and case.matches(line[len(prefix):])]


def test_the_corpus_is_large_enough() -> None:
    """The corpus holds at least 60 malformed playbooks, each with a readable expectation."""
    files = sorted(INVALID.glob("*.yml"))
    assert len(files) >= 60
    assert [expectation(p).path for p in files] == files


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_invalid_playbook_is_refused_with_its_location(case: Expected, capsys: pytest.CaptureFixture[str]) -> None:
    """`orchestrate FILE` exits 2 and prints `FILE:LINE:COL: message` at the expected place, no traceback."""
    code = main([str(case.path)])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in out + err
    assert out == ""
    lines = err.splitlines()
    assert lines, "no diagnostic printed"
    assert all(DIAGNOSTIC.match(line) for line in lines), err
    assert _matching(err, case), f"expected {case.line}:{case.col} with {case.fragment!r}; got:\n{err}"


@pytest.mark.parametrize("name", ["yaml_unclosed_bracket", "unknown_step_key", "cpu_lambda"])
def test_invalid_playbook_is_refused_by_a_real_process(name: str) -> None:
    """The same diagnostics and exit code 2 from `python -m orchestrator.cli.main` in its own process."""
    case = expectation(INVALID / f"{name}.yml")
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", str(case.path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert _matching(done.stderr, case), done.stderr
