"""`orchestrate -`: the playbook read from standard input, as `kubectl apply -f -` reads one.

Real processes of the installed `orchestrate` command, with the playbook piped in (or redirected
from a file): the run, its errors at `<stdin>:LINE:COL`, `check -`, `--dry-run -`, `call:` modules
from the current directory, the steps' own stdin, a terminal on stdin, and the run's record.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pexpect
import pytest

from orchestrator.model.input_file import MAX_FILE_BYTES

ORCHESTRATE = str(Path(sys.executable).with_name("orchestrate"))
ONE_STEP = "name: x\nsteps:\n  - id: a\n    set: {value: 1}\n"


def orchestrate(
    *args: str, stdin: str | bytes | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`orchestrate ARGS` with `stdin` piped in (text or bytes), or redirected from a file (a Path)."""
    run: dict[str, Any] = {"input": stdin.encode() if isinstance(stdin, str) else stdin}
    with contextlib.ExitStack() as stack:
        if isinstance(stdin, Path):
            run = {"stdin": stack.enter_context(stdin.open("rb"))}
        done = subprocess.run(
            [ORCHESTRATE, *args], capture_output=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=60, **run,
        )
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


@pytest.mark.parametrize("how", ["pipe", "file"])
def test_a_playbook_piped_in_runs_as_one_from_a_file_would(tmp_path: Path, how: str) -> None:
    """`printf ... | orchestrate - --format json` (or `orchestrate - < file`): the run succeeds, and
    the JSON result names the playbook."""
    source: str | Path = ONE_STEP
    if how == "file":
        source = tmp_path / "x.yml"
        source.write_text(ONE_STEP)
    done = orchestrate("-", "--format", "json", stdin=source)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["playbook"], result["status"], [s["status"] for s in result["steps"]]) == ("x", "succeeded", ["succeeded"])


def test_options_stand_before_or_after_the_dash() -> None:
    """`orchestrate --dry-run -` plans the piped playbook and runs nothing; `--var` applies to it."""
    text = "name: x\nvars: {n: 1}\nsteps:\n  - id: a\n    set: '{{ n }}'\n  - id: b\n    when: '{{ n > 1 }}'\n    log: big\n"
    done = orchestrate("--dry-run", "--var", "n=2", "--format", "json", "-", stdin=text)
    assert done.returncode == 0, done.stderr
    assert {s["id"]: s["status"] for s in json.loads(done.stdout)["steps"]} == {"a": "planned", "b": "planned"}
    done = orchestrate("-", "--var", "n=2", "--only", "a", "--format", "json", stdin=text)
    assert done.returncode == 0, done.stderr
    assert {s["id"]: s["status"] for s in json.loads(done.stdout)["steps"]} == {"a": "succeeded", "b": "skipped"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("name: x\nsteps:\n  - id: a\n    set: {value: [1}\n", "<stdin>:4:20: YAML syntax error", id="not-yaml"),
        pytest.param(
            "name: x\nsteps:\n  - id: a\n    retyr: 3\n    set: 1\n", "<stdin>:4:5: steps[0]: unknown key 'retyr' (did you mean 'retry'?)",
            id="unknown-key",
        ),
        pytest.param("", "<stdin>:1:1: a playbook is a mapping with `name` and `steps`; got an empty document", id="empty"),
        pytest.param(b"name: x\nsteps:\n  - id: \xff\n", "<stdin>:3:9: cannot read playbook: not UTF-8 text (byte 0xff)", id="not-utf8"),
        pytest.param(b"#" * (MAX_FILE_BYTES + 1), "<stdin>:1:1: cannot read playbook: it is over the 4 MiB", id="too-large"),
    ],
)
def test_a_bad_playbook_on_stdin_is_located_at_stdin_line_col_and_exits_2(text: str | bytes, expected: str) -> None:
    """Errors name `<stdin>:LINE:COL`, as a file's name `FILE:LINE:COL`; exit 2, no traceback."""
    done = orchestrate("-", stdin=text)
    assert done.returncode == 2
    assert done.stderr.startswith(expected), done.stderr
    assert "Traceback" not in done.stderr


def test_json_format_names_stdin_in_its_errors() -> None:
    done = orchestrate("-", "--format", "json", stdin="name: x\nsteps: 3\n")
    assert done.returncode == 2
    report = json.loads(done.stdout)
    assert report["playbook"] == "<stdin>" and report["status"] == "invalid"
    assert {e["file"] for e in report["errors"]} == {"<stdin>"}


def test_check_reads_dash_among_files(tmp_path: Path) -> None:
    """`orchestrate check - FILE`: stdin is checked as `<stdin>`, beside the files; exit 2 when one is invalid."""
    good = tmp_path / "good.yml"
    good.write_text(ONE_STEP)
    done = orchestrate("check", "-", str(good), stdin=ONE_STEP)
    assert (done.returncode, done.stdout.splitlines()) == (0, ["<stdin>: ok", f"{good}: ok"])
    done = orchestrate("check", str(good), "-", "--format", "json", stdin=ONE_STEP + "bogus: 1\n")
    assert done.returncode == 2
    files = json.loads(done.stdout)["files"]
    assert [(f["file"], f["valid"]) for f in files] == [(str(good), True), ("<stdin>", False)]
    assert done.stderr.startswith("<stdin>:5:1: playbook: unknown key 'bogus'")


def test_dash_given_twice_is_a_usage_error() -> None:
    """Standard input is read once: `check - -` exits 2 before checking anything."""
    done = orchestrate("check", "-", "-", stdin=ONE_STEP)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "orchestrate: error: `-` (the playbook on standard input) can be given once: standard input is read once\n"


def test_call_modules_are_imported_from_the_current_directory(tmp_path: Path) -> None:
    """A playbook without a file has no folder of its own: `call:` finds modules in the current
    directory, on threads and on worker processes alike."""
    (tmp_path / "tasks.py").write_text("def greet(name):\n    return 'hi ' + name\n")
    text = textwrap.dedent("""
        name: calls
        steps:
          - {id: here, call: 'tasks:greet', with: {name: a}}
          - {id: there, kind: cpu, call: 'tasks:greet', with: {name: b}}
          - id: check
            assert: {that: "{{ steps.here.output == 'hi a' and steps.there.output == 'hi b' }}"}
        """)
    done = orchestrate("-", "--format", "json", stdin=text, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"


def test_steps_programs_never_read_the_playbooks_stdin(tmp_path: Path) -> None:
    """The playbook's pipe is read to its end before the run: a `shell` step's program reads its own
    `stdin:` text or nothing, and a program a `call:` step starts meets end of file at once (no step
    waits on the pipe, none sees the playbook)."""
    (tmp_path / "tasks.py").write_text(
        "import subprocess\n\ndef cat():\n    return subprocess.run(['cat'], capture_output=True, text=True, timeout=10).stdout\n"
    )
    text = textwrap.dedent("""
        name: stdin of steps
        steps:
          - {id: bare, shell: {argv: [cat]}}
          - {id: given, shell: {argv: [cat], stdin: its own}}
          - {id: called, kind: blocking, call: 'tasks:cat'}
          - id: check
            assert:
              that: "{{ steps.bare.output.stdout == '' and steps.given.output.stdout == 'its own' and steps.called.output == '' }}"
        """)
    done = orchestrate("-", "--format", "json", stdin=text, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"


def test_a_terminal_on_stdin_is_refused_at_once_saying_what_dash_expects() -> None:
    """`orchestrate -` typed with no pipe does not wait in silence: exit 2, and how to pipe one in."""
    child = pexpect.spawn(ORCHESTRATE, ["-"], encoding="utf-8", timeout=30)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert "`-` reads the playbook from standard input, which is a terminal: pipe it in" in (child.before or "")


def test_a_stdin_run_is_recorded_but_resume_says_why_it_cannot_continue_it(tmp_path: Path) -> None:
    """The run is in the history like any other (no file path); its text is not kept, so `resume`
    refuses it (exit 2), saying so and what to do instead."""
    history = {"ORCHESTRATOR_HISTORY": str(tmp_path / "runs.sqlite")}
    failing = "name: piped\nsteps:\n  - {id: boom, shell: {argv: [sh, -c, 'exit 3']}}\n"
    assert orchestrate("-", stdin=failing, env=history).returncode == 1
    listed = json.loads(orchestrate("runs", "--format", "json", stdin="", env=history).stdout)["runs"]
    assert [(r["playbook"], r["path"], r["status"], r["resumable"]) for r in listed] == [("piped", None, "failed", False)]
    done = orchestrate("resume", listed[0]["run_id"], stdin="", env=history)
    assert done.returncode == 2
    assert "read from standard input" in done.stderr and "from a file if its runs are to be resumable" in done.stderr
