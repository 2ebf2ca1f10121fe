"""Dry runs and `orchestrate check` execute none of a playbook's code; real runs import it as before.

A `call:` module's top level is code (so is its package's ``__init__``): planning reads the target
from source instead of importing it (`orchestrator/actions/source_check/`). The proof is a real
`orchestrate` process under an audit hook that records every code object executed from the
playbook's folder, every file opened for writing, and every process or connection started
(audit hooks see what C code does too), as `tests/test_dry_run.py` does for the shipped playbook.
"""

from __future__ import annotations

import ast
import asyncio
import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import orchestrator
from orchestrator.cli.main import main

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]

# orchestrate under an audit hook that also records module code run from AUDIT_FOLDER.
AUDITED = str(ROOT / "tests" / "audited_cli.py")

# A module whose top level writes a file, and a package whose __init__ does (its submodule does
# not); both define the same functions (_FUNCTIONS).
_WRITES = """
    from pathlib import Path

    Path({marker!r}).write_text("the module's top level ran")

"""
_PACKAGE_INIT = """
    from pathlib import Path

    Path({marker!r}).write_text("the package's __init__ ran")
"""
_FUNCTIONS = """
    async def fetch(host: str) -> str:
        return host


    def query(hosts: list[str]) -> int:
        return len(hosts)


    def crunch(n: int) -> int:
        return n * 2
"""
_MODULE = _WRITES + _FUNCTIONS
_PLAYBOOK = """
    name: {name}
    steps:
      - id: fetch
        call: {module}:fetch
        with: {{host: a}}
      - id: query
        call: {module}:query
        with: {{hosts: ["{{{{ steps.fetch.output }}}}"]}}
      - id: crunch
        kind: cpu
        call: {module}:crunch
        with: {{n: 2}}
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A playbook folder with `module.yml` (its module writes a file at import) and `package.yml`
    (its package's ``__init__`` does)."""
    _write(tmp_path / "dry_writer_mod.py", _MODULE.format(marker=str(tmp_path / "module-ran")))
    _write(tmp_path / "dry_writer_pkg" / "__init__.py", _PACKAGE_INIT.format(marker=str(tmp_path / "package-ran")))
    _write(tmp_path / "dry_writer_pkg" / "work.py", _FUNCTIONS)
    _write(tmp_path / "module.yml", _PLAYBOOK.format(name="module writes at import", module="dry_writer_mod"))
    _write(tmp_path / "package.yml", _PLAYBOOK.format(name="package init writes", module="dry_writer_pkg.work"))
    return tmp_path


def _audited(folder: Path, *argv: str) -> tuple[int, str, list[str], str]:
    """Run `orchestrate ARGV...` under the audit hook: (exit code, stdout, what the hook saw, stderr)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT), "AUDIT_FOLDER": str(folder)}
    proc = subprocess.run(
        [sys.executable, AUDITED, *argv], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    assert last.startswith("AUDIT "), proc.stderr
    return proc.returncode, proc.stdout, ast.literal_eval(last.removeprefix("AUDIT ")), proc.stderr


def _nothing_ran(folder: Path) -> None:
    assert not (folder / "module-ran").exists()
    assert not (folder / "package-ran").exists()
    assert not list(folder.rglob("__pycache__"))


@pytest.mark.parametrize("playbook", ["module.yml", "package.yml"])
@pytest.mark.parametrize(
    "command",
    [["--dry-run"], ["--dry-run", "--format", "json"], ["check"]],
    ids=["dry-run", "dry-run-json", "check"],
)
def test_planning_executes_none_of_the_playbooks_code(folder: Path, playbook: str, command: list[str]) -> None:
    """`--dry-run`, `--dry-run --format json` and `check` on a playbook whose `call:` module (or its
    package's `__init__`) writes a file at import: exit 0, nothing executed from the folder, no file
    written, no process started; kinds still inferred from the source (async def: non-blocking)."""
    path = folder / playbook
    argv = ["check", str(path)] if command == ["check"] else [*command, str(path)]
    code, out, seen, err = _audited(folder, *argv)
    assert code == 0, err
    assert seen == [], seen
    _nothing_ran(folder)
    if command == ["check"]:
        assert out.strip() == f"{path}: ok"
    elif "json" in command:
        steps = {s["id"]: s for s in json.loads(out)["steps"]}
        assert (steps["fetch"]["kind"], steps["fetch"]["kind_source"]) == ("non-blocking", "inferred")
        assert (steps["query"]["kind"], steps["query"]["kind_source"]) == ("blocking", "inferred")
        assert (steps["crunch"]["kind"], steps["crunch"]["executor"]) == ("cpu", "processes")
    else:
        assert "non-blocking (inferred)" in out and "cpu (declared) on processes" in out


def test_the_hook_sees_a_real_run_execute_the_module_and_write(folder: Path) -> None:
    """The same harness on a real run records the module's code executed and its file written (so
    the test above can fail), and the run succeeds on asyncio, threads and processes."""
    code, out, seen, err = _audited(folder, str(folder / "module.yml"), "--format", "json")
    assert code == 0, err
    assert f"exec {folder / 'dry_writer_mod.py'}" in seen
    assert f"open-for-write {folder / 'module-ran'}" in seen
    assert [s["executor"] for s in json.loads(out)["steps"]] == ["asyncio", "threads", "processes"]


# --- the plan-time errors are the same, located, found without running the module -----------------


_HELPERS = """
    from pathlib import Path

    Path({marker!r}).write_text("ran")

    ANSWER = 42

    square = lambda x: x * x  # noqa: E731


    async def fetch() -> str:
        return "fetched"
"""


def test_plan_time_errors_keep_their_messages_and_locations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing module, a missing function, a coroutine on cpu, a lambda on cpu, a constant and a
    coroutine declared blocking are reported at FILE:LINE:COL as before, and the module never runs."""
    _write(tmp_path / "located_helpers.py", _HELPERS.format(marker=str(tmp_path / "module-ran")))
    path = _write(tmp_path / "errors.yml", """
        name: errors located
        steps:
          - id: missing_module
            call: no_such_module_xyz:run
          - id: missing_function
            call: located_helpers:nope
          - id: coroutine_on_cpu
            kind: cpu
            call: located_helpers:fetch
          - id: lambda_on_cpu
            kind: cpu
            call: located_helpers:square
          - id: constant
            call: located_helpers:ANSWER
          - id: blocking_coroutine
            kind: blocking
            call: located_helpers:fetch
    """)
    assert main(["check", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    expected = [
        (4, "steps[0].call: cannot import module 'no_such_module_xyz' for 'no_such_module_xyz:run'"),
        (6, "steps[1].call: cannot find 'located_helpers:nope': module 'located_helpers' has no attribute 'nope'"),
        (8, "steps[2].kind: located_helpers:fetch is a coroutine function"),
        (12, "steps[3].call: located_helpers:square cannot be sent to a worker process"),
        (14, "steps[4].call: cannot load 'located_helpers:ANSWER': located_helpers:ANSWER is an int at located_helpers.py:5, not a callable"),
        (16, "steps[5].kind: `call` here cannot run as 'blocking'; it can run as non-blocking"),
    ]
    for line, message in expected:
        assert any(entry.startswith(f"{path}:{line}:11: {message}") for entry in lines), (line, message, lines)
    assert not (tmp_path / "module-ran").exists()


def test_what_reading_the_source_finds_wrong_is_an_error_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A top-level import of a module found nowhere, a syntax error, and a package submodule that
    does not exist are plan errors (as they were when planning imported the module)."""
    _write(tmp_path / "needs_missing_dep.py", "import no_such_dependency_xyz\n\n\ndef run() -> None:\n    pass\n")
    _write(tmp_path / "broken_syntax_mod.py", "def run(:\n    pass\n")
    _write(tmp_path / "some_pkg_xyz" / "__init__.py", "")
    path = _write(tmp_path / "errors.yml", """
        name: source problems
        steps:
          - {id: a, call: "needs_missing_dep:run"}
          - {id: b, call: "broken_syntax_mod:run"}
          - {id: c, call: "some_pkg_xyz.nope:run"}
    """)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3:19: steps[0].call: cannot import module 'no_such_dependency_xyz' for 'needs_missing_dep:run' (needs_missing_dep.py:1 imports it)" in err
    assert f"{path}:4:19: steps[1].call: cannot load 'broken_syntax_mod:run': SyntaxError:" in err
    assert f"{path}:5:19: steps[2].call: cannot import module 'some_pkg_xyz.nope'" in err


def test_kinds_follow_re_exports_methods_and_callable_instances(tmp_path: Path) -> None:
    """What the source says, followed through a package's re-export, an alias, a star import, a
    class and an instance with an async __call__, decides the kind, as the imported object would."""
    name = f"kinds_{uuid.uuid4().hex[:8]}"
    _write(tmp_path / name / "__init__.py", "from .impl import fetch\nfrom .more import *\nalias = fetch\n")
    _write(tmp_path / name / "impl.py", "async def fetch() -> None:\n    pass\n")
    _write(tmp_path / name / "more.py", textwrap.dedent("""
        __all__ = ["Poller", "poll", "plain"]


        class Poller:
            async def __call__(self) -> None:
                pass

            def sync(self) -> None:
                pass


        poll = Poller()


        def plain() -> None:
            pass
    """))
    path = _write(tmp_path / "kinds.yml", f"""
        name: kinds
        steps:
          - {{id: reexport, call: "{name}:fetch"}}
          - {{id: alias, call: "{name}:alias"}}
          - {{id: instance, call: "{name}:poll"}}
          - {{id: method, call: "{name}:Poller.sync"}}
          - {{id: star, kind: cpu, call: "{name}:plain"}}
    """)
    plan = orchestrator.plan(path)
    assert {s.id: s.kind for s in plan.steps} == {
        "reexport": "non-blocking", "alias": "non-blocking", "instance": "non-blocking", "method": "blocking", "star": "cpu",
    }
    assert name not in sys.modules


def test_what_the_source_cannot_tell_plans_with_a_warning_and_the_run_checks_it(tmp_path: Path) -> None:
    """A decorated function whose decorator makes it a coroutine function: the plan takes the `def`
    at its word (blocking) and says it could not verify; the run, which imports it, fails the step
    rather than call a coroutine function on a thread."""
    _write(tmp_path / "sneaky_tasks.py", """
        import functools


        def to_coroutine(fn):
            @functools.wraps(fn)
            async def wrapper(**kwargs):
                return fn(**kwargs)
            return wrapper


        @to_coroutine
        def sneaky() -> int:
            return 1


        made = functools.partial(print)
    """)
    path = _write(tmp_path / "sneaky.yml", """
        name: sneaky
        steps:
          - {id: sneaky, call: "sneaky_tasks:sneaky"}
          - {id: made, call: "sneaky_tasks:made"}
    """)
    code, out, seen, err = _audited(tmp_path, "check", str(path))
    assert code == 0 and seen == [], err
    assert "call.unverified" in err and "decorated with @to_coroutine" in err and "made at sneaky_tasks.py" in err
    code, out, seen, err = _audited(tmp_path, str(path), "--format", "json")
    assert code == 1, err
    sneaky = json.loads(out)["steps"][0]
    assert sneaky["status"] == "failed" and sneaky["executor"] == "threads"
    assert "sneaky_tasks:sneaky was planned as not a coroutine function (a def at sneaky_tasks.py:12), but the imported one is one" in sneaky["error"]


# --- a real run imports and runs, on every executor ------------------------------------------------


@pytest.fixture
def module_name() -> Iterator[str]:
    """A module name of the test's own (the run imports it into this process), forgotten after."""
    name = f"real_run_{uuid.uuid4().hex[:8]}"
    yield name
    sys.modules.pop(name, None)


async def test_a_real_run_imports_the_module_and_runs_it_on_asyncio_threads_and_processes(
    tmp_path: Path, module_name: str
) -> None:
    """The run imports the module (its top level runs once here, and again in the worker process)
    and calls the coroutine function on the event loop, the plain one on a thread, the cpu one in a
    worker process; sys.path is as it was afterwards."""
    marker = tmp_path / "imported"
    _write(tmp_path / f"{module_name}.py", f"""
        import os
        import threading

        with open({str(marker)!r}, "a") as f:
            f.write(f"{{os.getpid()}}\\n")


        async def on_loop() -> str:
            return threading.current_thread().name


        def on_thread() -> str:
            return threading.current_thread().name


        def in_process() -> int:
            return os.getpid()
    """)
    path = _write(tmp_path / "real.yml", f"""
        name: real run
        steps:
          - {{id: loop, call: "{module_name}:on_loop"}}
          - {{id: thread, call: "{module_name}:on_thread"}}
          - {{id: process, kind: cpu, call: "{module_name}:in_process"}}
    """)
    before = list(sys.path)
    plan = orchestrator.plan(path)
    assert not marker.exists() and module_name not in sys.modules
    result = await orchestrator.arun(plan)
    assert result.status == "succeeded", [s.error for s in result.steps]
    out = {s.id: (s.executor, s.output) for s in result.steps}
    assert out["loop"] == ("asyncio", threading.current_thread().name)
    assert out["thread"][0] == "threads" and out["thread"][1] != threading.current_thread().name
    assert out["process"][0] == "processes" and out["process"][1] != os.getpid()
    pids = marker.read_text().split()
    assert str(os.getpid()) in pids and str(out["process"][1]) in pids
    assert sys.path == before


async def test_a_run_refuses_a_same_named_module_imported_from_elsewhere(tmp_path: Path, module_name: str) -> None:
    """Two folders with a module of the same name: the second run would get the first folder's
    module from `sys.modules`; it fails the step saying so, instead of calling the wrong code."""
    for side in ("a", "b"):
        _write(tmp_path / side / f"{module_name}.py", f"def which() -> str:\n    return {side!r}\n")
        _write(tmp_path / side / "p.yml", f"name: {side}\nsteps:\n  - {{id: w, call: '{module_name}:which'}}\n")
    first = await orchestrator.arun(tmp_path / "a" / "p.yml")
    assert first.steps[0].output == "a"
    second = await orchestrator.arun(tmp_path / "b" / "p.yml")
    assert second.status == "failed"
    assert f"module {module_name!r} is already imported from {tmp_path / 'a' / f'{module_name}.py'}" in (second.steps[0].error or "")


# --- modules beside a playbook never shadow the engine's dependencies ------------------------------


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"hello": "world"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def local_api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


_STRAYS = ("aiohttp", "yaml", "structlog", "jinja2")


def test_stray_modules_beside_the_playbook_shadow_no_library(tmp_path: Path, local_api: str) -> None:
    """`aiohttp.py` (and yaml.py, structlog.py, jinja2.py) beside a playbook with `call:` steps, each
    raising when imported: a real run's `http` step imports the real aiohttp (lazily, during the
    run), a `call:` function that imports aiohttp gets the real one, and every kind runs."""
    for stray in _STRAYS:
        _write(tmp_path / f"{stray}.py", f"raise RuntimeError('the stray {stray}.py beside the playbook was imported')\n")
    _write(tmp_path / "stray_tasks.py", """
        import os


        async def on_loop() -> str:
            import aiohttp
            return aiohttp.__file__


        def on_thread() -> str:
            import yaml
            return yaml.__file__


        def in_process() -> int:
            return os.getpid()
    """)
    path = _write(tmp_path / "stray.yml", f"""
        name: strays
        steps:
          - {{id: get, http: {{url: "{local_api}/hello"}}}}
          - {{id: loop, call: "stray_tasks:on_loop"}}
          - {{id: thread, call: "stray_tasks:on_thread"}}
          - {{id: process, kind: cpu, call: "stray_tasks:in_process"}}
    """)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT), "ORCHESTRATOR_HISTORY": "off"}
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from orchestrator.cli.main import main; sys.exit(main(sys.argv[1:]))",
         str(path), "--format", "json"], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = {s["id"]: s for s in json.loads(proc.stdout)["steps"]}
    assert all(s["status"] == "succeeded" for s in steps.values()), steps
    assert "was imported" not in proc.stderr


def test_a_call_module_named_like_an_installed_one_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`call: aiohttp:...` with a stray aiohttp.py beside the playbook is refused when planned,
    naming the file: at run time the installed aiohttp would be imported instead."""
    _write(tmp_path / "aiohttp.py", "raise RuntimeError('imported')\n\n\ndef ClientSession() -> None:\n    pass\n")
    path = _write(tmp_path / "p.yml", "name: p\nsteps:\n  - {id: a, call: 'aiohttp:ClientSession'}\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3:19: steps[0].call: {tmp_path / 'aiohttp.py'} beside the playbook has the name of the installed module 'aiohttp'" in err
    assert "rename aiohttp.py" in err


def test_the_folder_is_on_sys_path_after_the_installed_libraries_during_a_run(tmp_path: Path, module_name: str) -> None:
    """During a run the playbook's folder is the last entry of `sys.path`, and gone afterwards."""
    _write(tmp_path / f"{module_name}.py", "import sys\n\n\ndef where() -> list[str]:\n    return list(sys.path)\n")
    path = _write(tmp_path / "p.yml", f"name: p\nsteps:\n  - {{id: w, kind: blocking, call: '{module_name}:where'}}\n")
    before = list(sys.path)
    result = asyncio.run(orchestrator.arun(path))
    assert result.status == "succeeded", result.steps[0].error
    assert result.steps[0].output == [*before, str(tmp_path)]
    assert sys.path == before
