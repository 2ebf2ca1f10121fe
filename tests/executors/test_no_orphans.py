"""Nothing a run starts outlives its controller, even one killed with SIGKILL (Linux).

Each test starts a real controller (the ``orchestrate`` CLI, or a script calling
``orchestrator.run``) on a playbook with a ``shell`` step running ``sleep 60`` and a cpu step
spinning in a worker process, waits until both run, records every descendant (pid and start time,
so that a reused pid is not mistaken for a survivor), ends the controller, and checks that every
recorded process is gone and that no process left has one of them as its parent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import psutil
import pytest

from orchestrator.lifetime import ProgramReaper

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SPINNER = '''
import os
import pathlib
import time


def spin(marker: str) -> int:
    pathlib.Path(marker + ".new").write_text(str(os.getpid()))
    os.replace(marker + ".new", marker)  # whole, or not there yet
    deadline = time.monotonic() + 60
    turns = 0
    while time.monotonic() < deadline:
        turns += 1
    return turns
'''

PLAYBOOK = '''
name: outlive
steps:
  - id: sleeper
    shell: {{argv: [sleep, "60"]}}
  - id: spinner
    kind: cpu
    call: spinner:spin
    with: {{marker: "{marker}"}}
'''

SCRIPT = '''
import sys

import orchestrator
from orchestrator.config import Config, ExecutorSpec

if __name__ == "__main__":
    cpu = ExecutorSpec(type="processes", workers=1, start_method=sys.argv[2])
    orchestrator.run(sys.argv[1], config=Config(executors={**Config().executors, "cpu": cpu}))
'''

START_TIMEOUT = 30.0  # the forkserver's first start imports the run's modules: seconds on a busy machine
GONE_TIMEOUT = 5.0

Recorded = dict[int, float]  # pid -> create_time


def write_playbook(tmp_path: Path) -> Path:
    (tmp_path / "spinner.py").write_text(SPINNER)
    path = tmp_path / "outlive.yml"
    path.write_text(PLAYBOOK.format(marker=tmp_path / "spinning"))
    return path


@pytest.fixture
def controllers() -> Iterator[list[psutil.Popen]]:
    """Controllers the test starts; whatever of them and theirs is still alive at the end is killed."""
    started: list[psutil.Popen] = []
    yield started
    for controller in started:
        for process in [*_descendants(controller), controller]:
            with contextlib.suppress(psutil.Error):
                process.kill()
        controller.wait(5)


def start(argv: list[str], tmp_path: Path, controllers: list[psutil.Popen]) -> psutil.Popen:
    env = {**os.environ, "ORCHESTRATOR_HISTORY": str(tmp_path / "runs.sqlite")}
    controller = psutil.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "stderr").open("wb"))
    controllers.append(controller)
    return controller


def wait_until_running(controller: psutil.Popen, tmp_path: Path) -> Recorded:
    """Wait until the program sleeps and the worker spins; return the controller and its descendants."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert controller.poll() is None, (tmp_path / "stderr").read_text()
        descendants = _descendants(controller)
        sleeping = any(_name(process) == "sleep" for process in descendants)
        if sleeping and (tmp_path / "spinning").exists():
            spinner = int((tmp_path / "spinning").read_text())
            # Listed after the worker said it spins: a worker started since the first listing is in this one.
            processes = [controller, *_descendants(controller)]
            assert spinner in {process.pid for process in processes}
            return {process.pid: process.create_time() for process in processes}
        time.sleep(0.05)
    running = [_command(process.pid) for process in _descendants(controller)]
    raise AssertionError(
        f"the run did not start its program and worker in {START_TIMEOUT}s; running: {running}; "
        f"the worker started: {(tmp_path / 'spinning').exists()}; stderr: {(tmp_path / 'stderr').read_text()[-2000:]}"
    )


def assert_all_gone(recorded: Recorded) -> None:
    """Every recorded process ends within GONE_TIMEOUT, and none left alive has one as its parent."""
    deadline = time.monotonic() + GONE_TIMEOUT
    while True:
        alive = {pid: _command(pid) for pid, created in recorded.items() if _alive(pid, created)}
        adopted = {
            process.pid: _command(process.pid)
            for process in psutil.process_iter(["ppid", "status"])
            if process.info["ppid"] in recorded and process.info["status"] != psutil.STATUS_ZOMBIE
        }
        if not alive and not adopted:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"still alive {GONE_TIMEOUT}s after: {alive}; children of the run's processes: {adopted}")
        time.sleep(0.05)


def test_a_killed_cli_leaves_no_process_behind(tmp_path: Path, controllers: list[psutil.Popen]) -> None:
    """kill -9 of `orchestrate`: its shell program, forkserver, worker, resource tracker and reaper all end."""
    cli = start([sys.executable, "-m", "orchestrator.cli.main", str(write_playbook(tmp_path))], tmp_path, controllers)
    recorded = wait_until_running(cli, tmp_path)
    assert len(recorded) >= 6, [_command(pid) for pid in recorded]  # cli, sleep, reaper, tracker, forkserver, worker
    cli.send_signal(signal.SIGKILL)
    cli.wait(5)
    assert_all_gone(recorded)


@pytest.mark.parametrize("start_method", ["forkserver", "spawn", "fork"])
def test_a_killed_script_leaves_no_process_behind(tmp_path: Path, controllers: list[psutil.Popen], start_method: str) -> None:
    """kill -9 of a script calling orchestrator.run: the same, whichever way its workers start."""
    (tmp_path / "script.py").write_text(SCRIPT)
    playbook = write_playbook(tmp_path)
    script = start([sys.executable, "script.py", str(playbook), start_method], tmp_path, controllers)
    recorded = wait_until_running(script, tmp_path)
    script.send_signal(signal.SIGKILL)
    script.wait(5)
    assert_all_gone(recorded)


def test_an_interrupted_cli_leaves_no_process_behind(tmp_path: Path, controllers: list[psutil.Popen]) -> None:
    """Ctrl-C: the run ends as interrupted (exit 130), and its processes with it."""
    cli = start([sys.executable, "-m", "orchestrator.cli.main", str(write_playbook(tmp_path))], tmp_path, controllers)
    recorded = wait_until_running(cli, tmp_path)
    cli.send_signal(signal.SIGINT)
    assert cli.wait(15) == 130, (tmp_path / "stderr").read_text()
    assert_all_gone(recorded)


def test_a_child_whose_parent_is_already_gone_exits_at_once() -> None:
    """The parent died before the death signal was armed: the child does not carry on as an orphan."""
    code = "import os; from orchestrator.lifetime import die_with_parent; die_with_parent(os.getpid()); print('carried on')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == -signal.SIGKILL
    assert "carried on" not in done.stdout


def test_the_reaper_kills_the_groups_still_listed_and_only_those(tmp_path: Path) -> None:
    """A reaper killed by someone is replaced, with the groups listed again; a forgotten group is left alone."""
    reaper = ProgramReaper()
    programs = [subprocess.Popen(["sleep", "60"], start_new_session=True) for _ in range(3)]
    try:
        reaper.watch(programs[0].pid)
        reaper.watch(programs[1].pid)
        first = reaper.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        psutil.Process(first).wait(5)
        reaper.watch(programs[2].pid)  # finds the reaper gone and starts another
        assert reaper.pid not in (None, first)
        reaper.forget(programs[1].pid)
        reaper.close()  # as when this process exits
        assert programs[0].wait(5) == -signal.SIGKILL
        assert programs[2].wait(5) == -signal.SIGKILL
        assert programs[1].poll() is None
    finally:
        for program in programs:
            program.kill()
            program.wait()


def _descendants(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(pid: int, created: float) -> bool:
    try:
        process = psutil.Process(pid)
        return process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _name(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.Error:
        return ""


def _command(pid: int) -> str:
    try:
        return textwrap.shorten(" ".join(psutil.Process(pid).cmdline()), 100)
    except psutil.Error:
        return "?"
