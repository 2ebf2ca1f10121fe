"""`Probe`: a call wrapped to say where and how it ran: its lane, its start and end, its CPU time.

A run's timeline wraps the calls of sampled items in a probe before an executor gets them; the
probe runs wherever the executor runs the call (a pool thread, a worker process, a Dask worker)
and hands back the result with the measurements as one plain tuple, `Measured`: it crosses a pipe
back from a worker process, where a class instance would cost a class lookup to unpickle.

Clocks: `time.perf_counter` is CLOCK_MONOTONIC on Linux, one clock for every process of the machine, so
a worker process's start and end line up with the controller's; `time.thread_time` is the CPU
time of the thread that ran the call. In a worker process, one `getrusage(RUSAGE_THREAD)` (Linux)
before and after the call gives its CPU time and its voluntary context switches: how often it
blocked, which tells a call that waits from one that wants a core on a busy machine.

Stdlib only: worker processes import this module to unpickle a probe.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


try:
    import resource
except ImportError:  # Windows: no getrusage; probes measure CPU time with time.thread_time alone
    resource = None  # type: ignore[assignment]
_THREAD_USAGE: int | None = getattr(resource, "RUSAGE_THREAD", None)


#: A probed call's (result, lane, started, ended, cpu, waits): `waits`, in a worker process, is how
#: many times the call blocked (None where not counted).
Measured = tuple[Any, str, float, float, float, "int | None"]


class Probe:
    """`fn`, measured. Its `__module__` and `__qualname__` are `fn`'s, so error messages that name
    the callable (a dead worker, a result that does not pickle) name the user's function.

    Run in the controller's process (a thread), the measurements are also left on the probe
    itself, so a call that raised still tells which thread ran it."""

    def __init__(self, fn: Callable[..., Any], home: int | None = None) -> None:
        self.fn = fn
        self.home = _pid if home is None else home
        self.lane: str | None = None
        self.started = self.ended = self.cpu = 0.0
        self.__module__ = getattr(fn, "__module__", None) or __name__
        self.__qualname__ = getattr(fn, "__qualname__", None) or type(fn).__qualname__

    def __reduce__(self) -> tuple[Any, ...]:
        return (Probe, (self.fn, self.home))  # the rest is measured where it runs

    def __call__(self, *args: Any, **kwargs: Any) -> Measured:
        if _pid != self.home and _THREAD_USAGE is not None:
            return self._in_worker(args, kwargs, _THREAD_USAGE)
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            value = self.fn(*args, **kwargs)
        finally:
            self.cpu = time.thread_time() - cpu
            self.ended = time.perf_counter()
            self.started = started
            self.lane = _lane(self.home)
        return value, self.lane, started, self.ended, self.cpu, None

    def _in_worker(self, args: tuple[Any, ...], kwargs: dict[str, Any], who: int) -> Measured:
        # A worker process's call: what it raises goes back as the call's error, unmeasured.
        before = resource.getrusage(who)
        started = time.perf_counter()
        value = self.fn(*args, **kwargs)
        ended = time.perf_counter()
        after = resource.getrusage(who)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        return value, _lane(self.home), started, ended, cpu, after.ru_nvcsw - before.ru_nvcsw


# A traced call costs a few microseconds: this process's id and each thread's lane are found once.
_pid = os.getpid()
_here = threading.local()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _lane(home: int) -> str:
    """The lane of the calling thread: a Dask worker, a worker process or a thread of the controller."""
    known: tuple[int, str] | None = getattr(_here, "lane", None)
    if known is not None and known[0] == _pid:
        return known[1]
    lane = _find_lane(home)
    _here.lane = (_pid, lane)
    return lane


def _find_lane(home: int) -> str:
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            return f"dask:{get_worker().address}"
        except (ImportError, ValueError):
            pass  # not in a Dask worker
    if _pid != home:
        return f"process:{_pid}"
    return f"thread:{threading.current_thread().name}"
