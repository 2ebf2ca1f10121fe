"""The loop watchdog records a stall once and samples the held loop's stack once per stall: while
the loop is held, its thread does not wake in a loop and take the GIL from the threads that hold it."""

from __future__ import annotations

import asyncio
import time

from orchestrator.engine.timeline import Timeline
from orchestrator.engine.watchdog import THRESHOLD, LoopWatchdog


class CountingWatchdog(LoopWatchdog):
    samples = 0

    def _sample(self) -> tuple[str, str] | None:
        self.samples += 1
        return super()._sample()


async def test_a_long_stall_is_recorded_once_and_its_stack_sampled_once() -> None:
    timeline = Timeline()
    dog = CountingWatchdog(timeline, folder=None)
    await asyncio.sleep(3 * THRESHOLD)
    time.sleep(15 * THRESHOLD)  # noqa: ASYNC251 - holds the loop for fifteen thresholds, on purpose
    await asyncio.sleep(3 * THRESHOLD)
    dog.stop()
    assert len(timeline.stalls) == 1
    assert timeline.stalls[0].duration >= 14 * THRESHOLD
    assert dog.samples == 1

