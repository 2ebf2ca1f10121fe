"""`docs/playbook.schema.json`, checked with `check-jsonschema`, the client editors' users and CI run.

The committed file is what `orchestrate schema` prints, byte for byte, so it cannot drift from the
models. `check-jsonschema` (its own YAML reader and ECMAScript regexes) passes every shipped
playbook and fails the broken ones below, each of which `orchestrate check` refuses too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.cli.main import main
from tests.corpus import shipped_playbooks, valid_playbooks

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pytest

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "docs" / "playbook.schema.json"

# Each broken playbook: what is wrong, the YAML, and where check-jsonschema must point.
BROKEN = {
    "timeout_zero": ("name: x\nsteps:\n  - id: a\n    timeout: 0\n    log: hi\n", "$.steps[0].timeout"),
    "timeout_zero_text": ("name: x\nsteps:\n  - id: a\n    timeout: 0ms\n    log: hi\n", "$.steps[0].timeout"),
    "run_timeout_zero": ("name: x\ntimeout: 0s\nsteps:\n  - id: a\n    log: hi\n", "$.timeout"),
    "no_action": ("name: x\nsteps:\n  - id: a\n", "$.steps[0]"),
    "two_actions": ("name: x\nsteps:\n  - id: a\n    log: hi\n    sleep: 1s\n", "$.steps[0]"),
    "with_on_log": ("name: x\nsteps:\n  - id: a\n    log: hi\n    with: {k: 1}\n", "$.steps[0]"),
    "bad_method": ("name: x\nsteps:\n  - id: a\n    http: {method: FETCH, url: 'http://127.0.0.1/'}\n", "$.steps[0].http.method"),
    "rate_zero": ("name: x\nlimits:\n  api: {rate: 0/s}\nsteps:\n  - id: a\n    log: hi\n", "$.limits.api.rate"),
    "retry_too_many": ("name: x\nsteps:\n  - id: a\n    retry: 5000\n    log: hi\n", "$.steps[0].retry"),
    "unknown_key": ("name: x\nsteps:\n  - id: a\n    log: hi\n    retyr: 3\n", "$.steps[0]"),
}

# Valid playbooks near those edges: both check-jsonschema and `orchestrate check` accept them.
NEAR_MISSES = {
    "timeout_small": "name: x\nsteps:\n  - id: a\n    timeout: 0.5\n    log: hi\n",
    "timeout_text": "name: x\ntimeout: 0.01s\nsteps:\n  - id: a\n    timeout: 250ms\n    log: hi\n",
    "method_lower": "name: x\nsteps:\n  - id: a\n    http: {method: delete, url: 'http://127.0.0.1/'}\n",
    "method_template": (
        "name: x\nvars: {verb: PUT}\nsteps:\n  - id: a\n    http: {method: '{{ verb }}', url: 'http://127.0.0.1/'}\n"
    ),
    "retry_shorthand": "name: x\nsteps:\n  - id: a\n    retry: 3\n    log: hi\n",
    "call_with": "name: x\nsteps:\n  - id: a\n    call: json:dumps\n    with: {obj: 1}\n",
}


def _check_jsonschema(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *map(str, args)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def _write(folder: Path, cases: dict[str, str]) -> list[Path]:
    paths = []
    for name, text in cases.items():
        path = folder / f"{name}.yml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def _check_codes(paths: Sequence[Path], capsys: pytest.CaptureFixture[str]) -> dict[str, int]:
    codes = {p.stem: main(["check", str(p)]) for p in paths}
    capsys.readouterr()
    return codes


def test_the_committed_schema_is_what_orchestrate_schema_prints() -> None:
    """The file editors point at is the command's output, byte for byte (regenerate with
    `orchestrate schema > docs/playbook.schema.json`)."""
    printed = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", "schema"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert printed.returncode == 0, printed.stderr
    assert SCHEMA_FILE.read_text(encoding="utf-8") == printed.stdout


def test_the_committed_schema_is_a_valid_draft_2020_12_schema() -> None:
    """check-jsonschema validates the file against its own metaschema."""
    done = _check_jsonschema("--check-metaschema", SCHEMA_FILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_shipped_and_valid_playbook_passes() -> None:
    """check-jsonschema passes every playbook in playbooks/ and the valid corpus."""
    playbooks = [*shipped_playbooks(), *valid_playbooks()]
    assert len(shipped_playbooks()) >= 2
    done = _check_jsonschema("--schemafile", SCHEMA_FILE, *playbooks)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validation done" in done.stdout


def test_broken_playbooks_fail_both_the_schema_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each broken playbook fails check-jsonschema at the right place, and `orchestrate check` refuses it too."""
    paths = _write(tmp_path, {name: text for name, (text, _) in BROKEN.items()})
    done = _check_jsonschema("--schemafile", SCHEMA_FILE, "--output-format", "json", *paths)
    assert done.returncode == 1, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["parse_errors"] == []
    where = {Path(e["filename"]).stem: e["path"] for e in report["errors"]}
    assert where == {name: path for name, (_, path) in BROKEN.items()}
    assert _check_codes(paths, capsys) == dict.fromkeys(BROKEN, 2)


def test_near_misses_pass_both_the_schema_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Valid values next to the broken ones (small timeouts, lower-case or templated methods) pass both."""
    paths = _write(tmp_path, NEAR_MISSES)
    done = _check_jsonschema("--schemafile", SCHEMA_FILE, *paths)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _check_codes(paths, capsys) == dict.fromkeys(NEAR_MISSES, 0)
