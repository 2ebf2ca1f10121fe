"""Actions installed by other packages, under the ``orchestrator.actions`` entry point group, are
found by the CLI as a playbook's built-in ones are: found again when a package is installed, and
validated again when the plugin's module changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_ACTION = '''
from typing import Any, ClassVar
from typing_extensions import TypedDict
from orchestrator.actions.base import Action
from orchestrator.executors.base import Invocation


class {params}(TypedDict):
    __pydantic_config__ = {{"extra": "forbid"}}  # type: ignore[misc]
    {key}: str


async def _shout(text: str) -> str:
    return text.upper()


class {cls}(Action):
    """Upper-case a text."""

    name = "{name}"
    params_type: ClassVar[Any] = {params}

    def invocation(self, params: Any, with_: Any, ctx: Any) -> Invocation:
        return Invocation(_shout, (params["{key}"],))
'''


def _install(site: Path, package: str, name: str, key: str = "text") -> None:
    """What pip leaves in site-packages: the module and its dist-info with the entry point."""
    (site / f"{package}.py").write_text(_ACTION.format(params=f"{package}Params", cls=f"{package}Action", name=name, key=key))
    info = site / f"{package}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[orchestrator.actions]\n{name} = {package}:{package}Action\n")


def _orchestrate(tmp_path: Path, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_an_installed_action_runs_and_a_newly_installed_one_is_found(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "shoutplug", "shout")
    play = tmp_path / "play.yml"
    play.write_text(textwrap.dedent("""\
        name: plugins
        steps:
          - id: loud
            shout: {text: hello}
    """))
    for _ in range(2):  # the second run finds the plugin in the cache of what was installed
        done = _orchestrate(tmp_path, site, str(play), "--format", "json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["steps"][0]["status"] == "succeeded"

    _install(site, "whisperplug", "whisper")
    play.write_text(play.read_text() + "  - id: quiet\n    whisper: {text: hush}\n")
    done = _orchestrate(tmp_path, site, "check", str(play))
    assert done.returncode == 0, done.stderr + done.stdout


def test_a_changed_plugin_validates_the_playbook_again(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "shoutplug", "shout")
    play = tmp_path / "play.yml"
    play.write_text("name: plugins\nsteps:\n  - id: loud\n    shout: {text: hello}\n")
    assert _orchestrate(tmp_path, site, "check", str(play)).returncode == 0
    module = site / "shoutplug.py"
    module.write_text(module.read_text().replace("    text: str", "    words: str"))
    os.utime(module, ns=(module.stat().st_atime_ns, module.stat().st_mtime_ns + 1_000_000_000))
    done = _orchestrate(tmp_path, site, "check", str(play))
    assert done.returncode == 2
    assert "play.yml:4:" in done.stderr + done.stdout and "unknown key 'text'" in done.stderr + done.stdout
