"""Running `orchestrate` as a user does, for the durability tests: a subprocess with its own history
file, killed on cue, and a check that nothing it started outlives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]


def env_for(history: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "ORCHESTRATOR_HISTORY": str(history), **extra}


def orchestrate(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True, text=True, timeout=timeout,
        cwd=ROOT, env=env,
    )


def start(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`orchestrate ARGS` in the background, its JSON log lines going to `log`."""
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli.main", *args, "--log-format", "json"],
            stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT, env=env,
        )


def events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # the last line, half written when the process was killed
                continue
    return out


def wait_for(log: Path, proc: subprocess.Popen[bytes], event: str, timeout: float = 60, **fields: Any) -> dict[str, Any]:
    """The first log line of `event` (with `fields`), waiting for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in events(log):
            if e.get("event") == event and all(e.get(k) == v for k, v in fields.items()):
                return e
        if proc.poll() is not None:
            raise AssertionError(f"orchestrate exited {proc.returncode} before {event}: {log.read_text()[-2000:]}")
        time.sleep(0.02)
    raise AssertionError(f"no {event} {fields} within {timeout}s: {log.read_text()[-2000:]}")


def wait_for_program(proc: subprocess.Popen[bytes], name: str, timeout: float = 30) -> None:
    """Wait until the controller `proc` has started a program called `name` and handed it to its
    reaper (from its start to then, a program is unguarded for the event loop's turns that connect
    its pipes: docs/processes.md)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(child.name() == name for child in psutil.Process(proc.pid).children(recursive=True)):
                time.sleep(0.2)  # the turns of the loop from the program's start to its watch
                return
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    raise AssertionError(f"the run did not start {name} within {timeout} s")


def kill_and_check_nothing_survives(proc: subprocess.Popen[bytes]) -> int:
    """SIGKILL `proc`; assert every process it had started is gone within a few seconds (by PID and
    creation time, so a reused PID is not mistaken for a survivor). The number of them."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    proc.kill()
    proc.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=5)
    survivors = [f"{p.pid} {p.name()} (parent {p.ppid()})" for p in alive if p.is_running()]
    assert not survivors, f"processes of the killed run survive it: {survivors}"
    return len(children)
