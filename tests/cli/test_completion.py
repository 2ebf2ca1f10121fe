"""Shell completion: `orchestrate completion bash|zsh|fish` prints code that makes the shell complete
subcommands, options, playbook files, the step ids of the playbook on the command line and the run
ids of the history.

Through real shells: bash runs the printed code's completion function on a command line (as its
readline does at a TAB) and, under a pseudo-terminal, completes a typed line; zsh does the latter
too; fish answers `complete -C`. `.ci/run` installs Debian's zsh and fish where they are missing;
a test of a shell that is not there fails and says so.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pexpect
import pytest

from orchestrator.cli.main import SUBCOMMANDS

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = """
    name: web
    vars: {replicas: 2, region: eu}
    steps:
      - {id: network, log: a}
      - {id: vms, needs: [network], log: b}
      - {id: vms_ready, needs: [vms], log: c}
    rollback:
      - {id: undo, log: d}
    finally:
      - {id: tidy, log: e}
    """


def needs(shell: str) -> pytest.MarkDecorator:
    """The test runs `shell`: it must be installed (as `.ci/run` does: apt-get install SHELL)."""
    return pytest.mark.usefixtures(f"{shell}_installed")


@pytest.fixture
def bash_installed() -> None:
    assert shutil.which("bash") is not None, "bash is not installed: apt-get install bash"


@pytest.fixture
def zsh_installed() -> None:
    assert shutil.which("zsh") is not None, "zsh is not installed: apt-get install zsh"


@pytest.fixture
def fish_installed() -> None:
    assert shutil.which("fish") is not None, "fish is not installed: apt-get install fish"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder: a playbook, a variables file, a playbook with a mistake, a subfolder, a text file."""
    here = tmp_path_factory.mktemp("project")
    (here / "web.yml").write_text(textwrap.dedent(PLAYBOOK))
    (here / "vars.yaml").write_text("replicas: 3\n")
    (here / "broken.yml").write_text("name: broken\nsteps:\n  - {id: first, retyr: 3, log: a}\n  - {id: second, log: b}\n")
    (here / "notes.txt").write_text("not a playbook\n")
    (here / "more").mkdir()
    (here / "more" / "other.yaml").write_text("name: other\nsteps: [{id: one, log: x}]\n")
    return here


@pytest.fixture(scope="module")
def history(folder: Path) -> dict[str, str]:
    """A history file holding a run that failed (resumable) and one that succeeded (not): their ids by status."""
    env = {**os.environ, "ORCHESTRATOR_HISTORY": str(folder / "runs.sqlite")}
    (folder / "fails.yml").write_text("name: fails\nsteps:\n  - {id: boom, assert: {that: false}}\n")
    for playbook in ("web.yml", "fails.yml"):
        subprocess.run([BIN / "orchestrate", playbook], cwd=folder, env=env, capture_output=True, timeout=60)
    listed = subprocess.run(
        [BIN / "orchestrate", "runs", "--format", "json"], cwd=folder, env=env, capture_output=True, text=True, timeout=60,
    )
    (folder / "fails.yml").unlink()
    return {run["status"]: run["run_id"] for run in json.loads(listed.stdout)["runs"]}


def shell_env(folder: Path) -> dict[str, str]:
    """`orchestrate` on PATH, the module's history file, no user shell configuration."""
    return {
        **os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "ORCHESTRATOR_HISTORY": str(folder / "runs.sqlite"),
        "HOME": str(folder), "TERM": "dumb", "PS1": "$ ", "PROMPT": "$ ",
    }


def bash_completes(line: str, folder: Path) -> list[str]:
    """What bash offers at a TAB at the end of `line`: the printed code's completion function,
    called as readline calls it (COMP_LINE, COMP_POINT), its COMPREPLY one per line."""
    script = f"""
        eval "$(orchestrate completion bash)"
        function=$(complete -p orchestrate | sed -E 's/.*-F ([^ ]+).*/\\1/')
        COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}; COMP_TYPE=9
        "$function" orchestrate
        printf '%s\\n' "${{COMPREPLY[@]}}"
        """
    done = subprocess.run(["bash", "-c", script], cwd=folder, env=shell_env(folder), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [word.rstrip(" ") for word in done.stdout.splitlines() if word]


def test_bash_registers_a_completion_function_for_orchestrate(folder: Path) -> None:
    """The bash code defines the function and registers it with `complete`."""
    done = subprocess.run(
        ["bash", "-c", 'eval "$(orchestrate completion bash)" && complete -p orchestrate'],
        env=shell_env(folder), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"complete .*-F \S+ orchestrate\n", done.stdout)


@pytest.mark.parametrize(
    ("line", "offered"),
    [
        pytest.param("orchestrate ", [*sorted(SUBCOMMANDS), "broken.yml", "more/", "vars.yaml", "web.yml"], id="commands-and-playbooks"),
        pytest.param("orchestrate r", ["resume", "runs"], id="a-command"),
        pytest.param("orchestrate w", ["web.yml"], id="a-playbook"),
        pytest.param("orchestrate more/", ["more/other.yaml"], id="in-a-folder"),
        pytest.param("orchestrate web.yml --only ", ["network", "vms", "vms_ready"], id="main-step-ids"),
        pytest.param("orchestrate web.yml --skip vms", ["vms", "vms_ready"], id="step-ids-by-prefix"),
        pytest.param("orchestrate web.yml --only vms --only ", ["network", "vms_ready"], id="not-twice"),
        pytest.param("orchestrate broken.yml --only ", ["first", "second"], id="of-a-playbook-with-a-mistake"),
        pytest.param("orchestrate - --only ", [], id="none-for-stdin"),
        pytest.param("orchestrate missing.yml --only ", [], id="none-for-a-missing-file"),
        pytest.param("orchestrate web.yml --var ", ["region=", "replicas="], id="declared-variables"),
        pytest.param("orchestrate web.yml --var @v", ["vars.yaml"], id="a-variables-file"),
        pytest.param("orchestrate web.yml --for", ["--format"], id="an-option"),
        pytest.param("orchestrate web.yml --format j", ["json", "junit"], id="an-option-value"),
        pytest.param("orchestrate web.yml --dry-run=", ["reads"], id="dry-run-reads"),
        pytest.param("orchestrate --dry-run w", ["web.yml"], id="playbook-after-an-option"),
        pytest.param("orchestrate check ", ["broken.yml", "more/", "vars.yaml", "web.yml"], id="check-paths"),
        pytest.param("orchestrate check web.yml ", ["broken.yml", "more/", "vars.yaml", "web.yml"], id="check-more-paths"),
        pytest.param("orchestrate runs --h", ["--help", "--history", "--html"], id="a-subcommands-options"),
        pytest.param("orchestrate completion ", ["bash", "fish", "zsh"], id="shells"),
    ],
)
def test_bash_completes(folder: Path, line: str, offered: list[str]) -> None:
    assert sorted(bash_completes(line, folder)) == sorted(offered)


def test_resume_completes_the_runs_it_can_continue_and_runs_every_run(folder: Path, history: dict[str, str]) -> None:
    """`resume` offers the run that failed, not the one that succeeded; `runs` offers both; a
    `--history FILE` on the line is the file read."""
    assert bash_completes("orchestrate resume ", folder) == [history["failed"]]
    assert sorted(bash_completes("orchestrate runs ", folder)) == sorted(history.values())
    elsewhere = folder / "more" / "empty.sqlite"
    assert bash_completes(f"orchestrate resume --history {elsewhere} ", folder) == []


def test_completing_runs_nothing(folder: Path) -> None:
    """A TAB after a playbook whose step would write a file: the file is never written."""
    marker = folder / "ran"
    (folder / "writes.yml").write_text(f"name: writes\nsteps:\n  - {{id: touch, shell: {{argv: [touch, {marker}]}}}}\n")
    try:
        assert bash_completes("orchestrate writes.yml ", folder) == []
        assert bash_completes("orchestrate writes.yml --only ", folder) == ["touch"]
    finally:
        (folder / "writes.yml").unlink()
    assert not marker.exists()


def typed(shell: str, argv: list[str], setup: str, line: str, folder: Path, completed: str) -> str:
    """The command line after typing `line` and a TAB in an interactive `shell` under a pseudo-terminal,
    once `completed` shows (read back by turning the line into an `echo` to a file: nothing runs)."""
    result = folder / "typed.txt"
    result.unlink(missing_ok=True)
    child = pexpect.spawn(shell, argv, env=shell_env(folder), cwd=str(folder), encoding="utf-8", timeout=30)
    try:
        child.sendline(f"{setup} && echo READY")
        child.expect("READY\r?\n")
        child.send(line + "\t")
        child.expect_exact(completed)
        child.send(f"\x01echo \x05 > {result.name}\r")  # Ctrl-A: to the line's start; Ctrl-E: to its end
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    return result.read_text().strip()


@needs("bash")
def test_bash_completes_a_typed_line_at_a_tab(folder: Path) -> None:
    setup = 'eval "$(orchestrate completion bash)"'
    line = typed("bash", ["--norc", "--noprofile", "-i"], setup, "orchestrate web.yml --only vms_r", folder, "vms_ready")
    assert line == "orchestrate web.yml --only vms_ready"


@needs("zsh")
def test_zsh_completes_a_typed_line_at_a_tab(folder: Path) -> None:
    setup = 'autoload -U compinit && compinit -u && eval "$(orchestrate completion zsh)"'
    line = typed("zsh", ["-f", "-i"], setup, "orchestrate web.yml --only vms_r", folder, "vms_ready")
    assert line == "orchestrate web.yml --only vms_ready"


@needs("zsh")
def test_zsh_code_is_valid_zsh(folder: Path) -> None:
    code = subprocess.run([BIN / "orchestrate", "completion", "zsh"], capture_output=True, text=True, timeout=60).stdout
    done = subprocess.run(["zsh", "-n"], input=code, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@needs("fish")
def test_fish_completes_with_descriptions(folder: Path) -> None:
    """fish's own `complete -C` (what it runs at a TAB): subcommands with what they do, step ids."""
    script = """
        orchestrate completion fish | source
        complete -C 'orchestrate r'; echo ---; complete -C 'orchestrate web.yml --only vms'
        """
    assert subprocess.run(["fish", "-n", "-c", script], capture_output=True, timeout=60).returncode == 0
    done = subprocess.run(["fish", "--no-config", "-c", script], cwd=folder, env=shell_env(folder), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    commands, steps = done.stdout.split("---\n")
    assert commands.splitlines() == ["resume\tcontinue a recorded run that did not succeed", "runs\tlist the recorded runs, or show one"]
    assert steps.splitlines() == ["vms", "vms_ready"]


def test_an_unknown_shell_is_a_usage_error() -> None:
    done = subprocess.run([BIN / "orchestrate", "completion", "tcsh"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "invalid choice: 'tcsh'" in done.stderr


def test_a_run_imports_no_completion_code(tmp_path: Path) -> None:
    """The completion library is imported to complete, never by a run (its start-up is measured)."""
    playbook = tmp_path / "one.yml"
    playbook.write_text("name: one\nsteps:\n  - id: one\n    set: 1\n")
    code = (
        "import json, sys\nfrom orchestrator.cli.main import main\n"
        f"code = main([{str(playbook)!r}, '--format', 'json'])\n"
        "print(json.dumps([code, sorted(m for m in sys.modules if m.startswith('argcomplete') or m.startswith('orchestrator.cli.complet'))]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout.splitlines()[-1]) == [0, []]
