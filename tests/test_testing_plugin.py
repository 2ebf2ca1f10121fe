"""The pytest plugin (`orchestrator.testing`) as a user's test suite meets it: in its own pytest
process, loaded through the package's entry point, in pytest-asyncio's default strict mode and in
auto mode. The user's tests are `tests/plugin/user_tests.py`, copied into a fresh folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

USER_TESTS = Path(__file__).resolve().parent / "plugin" / "user_tests.py"


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_sandbox_and_run_playbook_fixtures_work_in_each_asyncio_mode(mode: str, tmp_path: Path) -> None:
    """A test marked `@pytest.mark.asyncio` runs a playbook against the `sandbox` fixture and passes."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n", encoding="utf-8")
    shutil.copy(USER_TESTS, tmp_path / "test_user.py")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", f"asyncio_mode={mode}", "-v", "test_user.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"mode=Mode.{mode.upper()}" in done.stdout
    assert "test_playbook_against_the_sandbox PASSED" in done.stdout
