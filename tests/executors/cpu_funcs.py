"""Module-level functions the process pool tests send to worker processes.

They live in their own module because a worker unpickles a call by importing the function's module.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time
from typing import Any

import structlog


def getpid() -> int:
    return os.getpid()


def add(a: int, b: int, *, times: int = 1) -> int:
    return (a + b) * times


def spin_pid(seconds: float) -> int:
    """Pure-Python busy loop (holds the GIL throughout) for `seconds`, then return this pid."""
    deadline = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < deadline:
        for i in range(1000):
            total += i * i
    return os.getpid()


def sleep_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def raise_value_error(message: str) -> None:
    raise ValueError(message)


def exit_now(code: int) -> None:
    os._exit(code)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)


class TwoArgError(Exception):
    """Pickles, but cannot be unpickled: __init__ takes two arguments, .args holds one."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")


def raise_two_arg_error() -> None:
    raise TwoArgError(7, "bad gateway")


def return_lock() -> Any:
    return threading.Lock()


def call_in_module(module: str, name: str) -> object:
    """Import `module` (found through the worker's sys.path) and call `module.name()`."""
    return getattr(importlib.import_module(module), name)()


def log_context() -> dict[str, Any]:
    return dict(structlog.contextvars.get_contextvars())


def set_marker(value: str) -> None:
    os.environ["PROCESS_POOL_TEST_MARKER"] = value


def read_marker() -> str | None:
    return os.environ.get("PROCESS_POOL_TEST_MARKER")


def failing_initializer() -> None:
    raise RuntimeError("no logging config")


def write_stderr(lines: list[str], partial: str = "") -> int:
    """Write whole lines (one from a thread of the call's own), then an unfinished one, to stderr."""
    for line in lines[:-1]:
        print(line, file=sys.stderr)
    thread = threading.Thread(target=print, args=(lines[-1],), kwargs={"file": sys.stderr})
    thread.start()
    thread.join()
    sys.stderr.buffer.write(b"as bytes\n")
    sys.stderr.write(partial)
    return os.getpid()


def write_stderr_then_exit(line: str, code: int) -> None:
    print(line, file=sys.stderr)
    sys.stderr.flush()
    os._exit(code)
