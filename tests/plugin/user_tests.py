"""What a playbook author writes with the plugin: an async test using `sandbox` and `run_playbook`.

Not collected here (no `test_` prefix); tests/test_testing_plugin.py runs it in a pytest of its own.
In pytest-asyncio's strict mode an async test needs its `asyncio` mark; in auto mode the mark is
harmless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from orchestrator import RunResult
    from orchestrator.sandbox import RunningSandbox

PLAYBOOK = """\
name: probe
vars:
  api: "http://127.0.0.1:1"
steps:
  - id: network
    http: {method: POST, url: "{{ api }}/v1/networks", json: {name: web}, expect: [201, 202]}
"""


@pytest.mark.asyncio
async def test_playbook_against_the_sandbox(
    sandbox: RunningSandbox, run_playbook: Callable[..., Awaitable[RunResult]], tmp_path: Path
) -> None:
    path = tmp_path / "probe.yml"
    path.write_text(PLAYBOOK, encoding="utf-8")
    result = await run_playbook(path, vars={"api": sandbox.url})
    assert result.status == "succeeded", result.summary()
    assert result.step("network").output["status"] in (201, 202)
    assert (await sandbox.stats())["created"]["networks"] == 1
