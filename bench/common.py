"""What every benchmark shares: timing rounds, machine facts, tables and the results file.

Timing policy (the machine is noisy): a figure is the *best* of its runs, because noise on a shared
machine only ever adds time. Runs are interleaved round by round, so a slow spell hits every cell
alike rather than all the runs of one.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PACKAGES = ("aiohttp", "jinja2", "matplotlib", "pydantic", "pyyaml", "structlog", "tenacity")

#: Runs the work once and returns the seconds it took (set-up outside the timed part is its business).
Cell = Callable[[], float]


@dataclass
class Measured:
    """Every run of one cell."""

    runs: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def as_json(self) -> dict[str, Any]:
        return {"best_s": self.best, "median_s": self.median, "runs": len(self.runs)}


def measure_rounds(
    cells: Mapping[str, Cell], repeat: int, once_above: float = math.inf, before_each: Callable[[], object] | None = None
) -> dict[str, Measured]:
    """Run every cell `repeat` times, one round at a time. A cell whose first run took longer than
    `once_above` seconds runs once: those are sleep-bound (sequential waits), so their noise is a
    small fraction of them, and repeating them would dominate the suite's time. `before_each` runs
    (untimed) before every run, e.g. to wait for the machine to be idle."""
    out = {name: Measured() for name in cells}
    for round_no in range(repeat):
        for name, cell in cells.items():
            runs = out[name].runs
            if round_no > 0 and runs[0] > once_above:
                continue
            if before_each is not None:
                before_each()
            runs.append(cell())
    return out


def timed(work: Callable[[], object]) -> float:
    """Seconds `work()` took."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def timed_run(main: Callable[[], Coroutine[Any, Any, object]]) -> float:
    """Seconds `asyncio.run(main())` took: a fresh event loop, as a script's `asyncio.run` has."""
    return timed(lambda: asyncio.run(main()))


def busy_fraction(sample: float = 1.0) -> float | None:
    """Share of all CPUs busy over `sample` seconds (from /proc/stat), or None off Linux. Taken while
    this process idles, it measures what else is running on the machine."""

    def counters() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]), idle  # user..steal; guest time is already counted in user

    try:
        total0, idle0 = counters()
        time.sleep(sample)
        total1, idle1 = counters()
    except (OSError, ValueError, IndexError):
        return None
    spent = total1 - total0
    return 1.0 - (idle1 - idle0) / spent if spent > 0 else 0.0


def wait_until_idle(limit: float, threshold: float = 0.25, sample: float = 1.0) -> float | None:
    """Wait (up to `limit` seconds) until other work uses less than `threshold` of the CPUs; returns
    the last busy fraction seen. Timings taken while another process holds a core are not comparable."""
    deadline = time.monotonic() + limit
    busy = busy_fraction(sample)
    while busy is not None and busy >= threshold and time.monotonic() < deadline:
        say(f"waiting for the machine to be idle: {busy:.0%} of the CPUs busy")
        time.sleep(5)
        busy = busy_fraction(sample)
    return busy


def say(message: str) -> None:
    """Progress on stderr, so stdout holds only the tables."""
    print(message, file=sys.stderr, flush=True)


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; infinite only for a zero denominator (a negative one shows noise)."""
    return numerator / denominator if denominator != 0 else math.inf


def machine() -> dict[str, Any]:
    """Where and with what the figures were measured."""
    versions: dict[str, str | None] = {}
    for name in ("orchestrator", *PACKAGES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    if versions["orchestrator"] is None:  # a checkout that is not installed
        import orchestrator

        versions["orchestrator"] = orchestrator.__version__
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "load_average_at_start": list(os.getloadavg()),
        "packages": versions,
        "git": _git(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git() -> dict[str, Any] | None:
    """The commit measured, and whether the tree had changes (read-only git commands)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write `data` atomically (a temporary file renamed over the target)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (which also reads well in a terminal)."""
    cells = [[str(h) for h in headers], *([_cell(v) for v in row] for row in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def seconds(value: float) -> str:
    return f"{value:.3f} s" if value < 10 else f"{value:.2f} s"


def times(value: float) -> str:
    return f"{value:.2f}x"


def verdict(holds: bool) -> str:
    return "holds" if holds else "MISSED"


def problems(data: Any, path: str = "") -> Iterator[str]:
    """Every number that is not finite, every null and every empty section or list in `data`."""
    if data is None:
        yield f"{path or '<root>'}: missing (null)"
        return
    if isinstance(data, bool):
        return
    if isinstance(data, int | float):
        if not math.isfinite(data):
            yield f"{path or '<root>'}: {data} is not finite"
    elif isinstance(data, Mapping):
        if not data:
            yield f"{path or '<root>'}: empty"
        for key, value in data.items():
            yield from problems(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list | tuple):
        if not data:
            yield f"{path}: empty list"
        for i, value in enumerate(data):
            yield from problems(value, f"{path}[{i}]")
