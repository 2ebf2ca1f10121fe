"""A watchdog for the event loop: notices when something holds it, and names the step whose code did.

A heartbeat callback runs on the loop every `INTERVAL` seconds and notes how late it ran: a beat
later than `THRESHOLD` is a stall, recorded on the run's timeline. Meanwhile a thread sleeps until
the beat now due is `THRESHOLD` overdue; if no beat came by then, the loop is held right now, and
the thread samples the loop thread's stack (`sys._current_frames()`, as aiodebug's hang
inspection and trio's watchdog do). The sample blames a step only when the stack holds both the
step's own code (a frame of the playbook's folder outside the orchestrator package and installed
libraries) and, further out, the engine's `StepRunner` working for that step: a coroutine's frame
links to the coroutine that awaits it, so a stalled task's whole chain is on the stack. A stall of
the engine's own making, or a loop starved of the GIL by threads elsewhere with no step code on its
stack, blames nothing.

The 20 ms threshold has headroom: a correctly tagged mixed run lags the loop 1 to 3 ms at worst
(`../shared/MEASURED.md`). While the loop keeps time, the thread wakes once per `THRESHOLD` and the
heartbeat costs a callback every 10 ms: nothing per item or per step.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path
from types import FunctionType
from typing import TYPE_CHECKING

from orchestrator.engine.step import StepRunner
from orchestrator.engine.timeline import Stall

if TYPE_CHECKING:
    from types import FrameType

    from orchestrator.engine.timeline import Timeline

THRESHOLD = 0.02
INTERVAL = 0.01
_PACKAGE = str(Path(__file__).resolve().parents[1]) + os.sep
_LIBRARIES = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)
_clock = time.perf_counter


#: The code of `StepRunner`'s methods: a frame running one of them has the runner as `self`.
_RUNNER_CODE = frozenset(f.__code__ for f in vars(StepRunner).values() if isinstance(f, FunctionType))


class LoopWatchdog:
    """Started on the loop it watches, by the run; `stop` ends it (idempotent)."""

    def __init__(self, timeline: Timeline, folder: Path | None, threshold: float = THRESHOLD) -> None:
        self.timeline = timeline
        self.threshold = threshold
        self.folder = str(folder.resolve()) + os.sep if folder is not None else None
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._due = _clock() + INTERVAL
        self._samples: dict[float, tuple[str, str]] = {}  # a stall's due time -> (step, where)
        self._stopped = threading.Event()
        self._handle = self._loop.call_later(INTERVAL, self._beat)
        self._thread = threading.Thread(target=self._watch, name="orchestrator-loop-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._handle.cancel()
        self._thread.join(1.0)

    def _beat(self) -> None:
        now = _clock()
        due, late = self._due, now - self._due
        self._due = now + INTERVAL
        if late > self.threshold:
            step, where = self._samples.pop(due, (None, None))
            self.timeline.stalls.append(Stall(due, late, step, where))
        if not self._stopped.is_set():
            self._handle = self._loop.call_later(INTERVAL, self._beat)

    def _watch(self) -> None:
        # Wake when the beat due now would be a stall: once per threshold while the loop keeps time.
        # A stalled beat's stack is sampled once; until that beat comes, the thread wakes once per
        # threshold, not in a loop: each wake takes the GIL from the threads a run is busy with.
        sampled = 0.0
        while True:
            due = self._due
            wake = due + self.threshold if due != sampled else _clock() + self.threshold
            if self._stopped.wait(max(wake - _clock(), 0.001)):
                return
            due = self._due
            if due != sampled and _clock() - due > self.threshold:
                sampled = due
                found = self._sample()
                if found is not None:
                    self._samples[due] = found

    def _sample(self) -> tuple[str, str] | None:
        """(step, where) if the loop thread's stack holds a step's own code, inside that step's runner."""
        frame: FrameType | None = sys._current_frames().get(self._thread_id)
        where: str | None = None
        while frame is not None:
            if where is None:
                where = self._own_code(frame)
            elif frame.f_code in _RUNNER_CODE:
                runner = frame.f_locals.get("self")
                if isinstance(runner, StepRunner):
                    return runner.step.id, where
            frame = frame.f_back
        return None

    def _own_code(self, frame: FrameType) -> str | None:
        file = frame.f_code.co_filename
        if self.folder is None or not file.startswith(self.folder) or file.startswith(_PACKAGE):
            return None
        if any(part in file for part in _LIBRARIES):
            return None
        return f"{os.path.relpath(file, self.folder)}:{frame.f_lineno} in {frame.f_code.co_name}"
