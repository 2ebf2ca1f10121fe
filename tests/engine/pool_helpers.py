"""Blocking callables for the thread pool tests: they count how many of them run at once."""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_running = 0
peak = 0


def reset() -> None:
    global _running, peak
    with _lock:
        _running = peak = 0


def wait(seconds: float) -> str:
    """Sleep on the calling thread (a blocking SDK call), counting the calls in flight."""
    global _running, peak
    with _lock:
        _running += 1
        peak = max(peak, _running)
    try:
        time.sleep(seconds)
    finally:
        with _lock:
            _running -= 1
    return threading.current_thread().name
