"""`python -m bench --quick`: the benchmark suite runs end to end and produces every figure.

No timing is asserted (performance is measured in bench/, never in tests); this only proves that
every section runs, every figure is a finite number and the generated docs are left alone.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "benchmarks.png")
STRATEGIES = (
    "sequential", "threads", "processes", "asyncio", "asyncio + threads", "asyncio + processes",
    "engine, right tag", "engine, wrong tag",
)


def numbers(data: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every number in a JSON document, with where it is."""
    if isinstance(data, bool):
        return
    if isinstance(data, int | float):
        yield path, float(data)
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from numbers(value, f"{path}.{key}")
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from numbers(value, f"{path}[{i}]")


def fingerprint(path: Path) -> tuple[int, int] | None:
    return (path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else None


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path, list[Any]]:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    before = [fingerprint(p) for p in DOCS]
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    return done, out, before


def test_quick_suite_exits_zero_and_writes_results(quick: Any) -> None:
    """The quick suite succeeds and writes its JSON where --out says."""
    done, out, _ = quick
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert out.is_file()


def test_every_section_has_only_finite_numbers(quick: Any) -> None:
    """Each section is present, holds figures, and every figure is finite."""
    _, out, _ = quick
    data = json.loads(out.read_text())
    for section in ("machine", "talk_table", "overhead", "scale", "journal", "cli", "adaptive", "pool_auto", "targets"):
        assert data.get(section), f"section {section!r} missing or empty"
        found = list(numbers(data[section]))
        assert found, f"section {section!r} has no numbers"
        bad = [(where, value) for where, value in found if not math.isfinite(value)]
        assert not bad, f"non-finite figures in {section}: {bad}"


def test_every_cell_and_ratio_is_measured(quick: Any) -> None:
    """The talk's table has every strategy for every workload, with its ratios; overhead and scale
    have both sides of every comparison."""
    _, out, _ = quick
    data = json.loads(out.read_text())
    workloads = data["talk_table"]["workloads"]
    assert set(workloads) == {"io", "blocking", "cpu"}
    for key, w in workloads.items():
        for name in STRATEGIES:
            assert w["cells"][name]["best_s"] > 0, (key, name)
            assert w["cells"][name]["speedup"] > 0, (key, name)
        for figure in ("engine_over_best", "right_over_wrong", "processes_over_threads"):
            assert w[figure] > 0, (key, figure)
    lanes = data["overhead"]["lanes"]
    assert set(lanes) == {"asyncio", "threads", "processes"}
    for lane in lanes.values():
        assert {"item_engine_us", "item_bare_us", "item_ratio", "step_engine_us", "step_bare_us"} <= set(lane)
        for unit in ("item", "step"):  # the timeline's cost: both sides, its interval, past the traced head
            low, high = lane[f"{unit}_timeline_ratio_ci95"]
            assert low <= lane[f"{unit}_timeline_ratio"] <= high, (lane, unit)
            assert lane[f"{unit}_timeline_rounds"] >= 2
            assert lane[f"{unit}_timeline_small"] < (lane["items"] if unit == "item" else lane["steps"])
    for row in data["scale"]["sizes"].values():
        for side in ("engine", "pool"):
            assert row[side]["peak_mib"] > 0 and row[side]["seconds"] > 0
    assert "engine_peak_ratio" in data["scale"]["growth"]
    assert all(isinstance(t["holds"], bool) for t in data["targets"])


def test_the_cli_section_has_both_sides_of_every_comparison(quick: Any) -> None:
    """`orchestrate` (json and text) beside `arun`, the start-up beside `import asyncio`, two dry-run
    sizes: each measured, each ratio there, and a verdict for each of the section's targets."""
    _, out, _ = quick
    data = json.loads(out.read_text())
    cli = data["cli"]
    for workload in ("fanout", "steps"):
        assert all(cli[workload][side] > 0 for side in ("json_s", "text_s", "arun_s")), workload
    assert cli["fanout"]["json_over_arun"] > 0 and cli["steps"]["text_over_json"] > 0
    assert cli["startup"]["one_step_json_s"] > 0 and cli["startup"]["import_asyncio_s"] > 0
    assert cli["startup"]["json_over_asyncio"] > 0
    assert cli["dry_run"]["large"] > cli["dry_run"]["small"] and math.isfinite(cli["dry_run"]["per_step_growth"])
    figures = [t["figure"] for t in data["targets"] if t["figure"].startswith("cli: ")]
    assert len(figures) == 5


def test_the_adaptive_section_runs_auto_beside_fixed_concurrencies(quick: Any) -> None:
    """bench/adaptive.py: auto and each fixed concurrency made every create, auto says what it settled
    on and how long it took after each capacity change, and its three targets have verdicts."""
    _, out, _ = quick
    data = json.loads(out.read_text())
    a = data["adaptive"]
    assert "auto" in a["cells"] and len(a["cells"]) >= 3
    for cell in a["cells"].values():
        assert cell["per_second"] > 0 and cell["requests"] >= a["items"] and cell["series"]
    assert a["cells"]["auto"]["settled"] >= 1
    assert len(a["cells"]["auto"]["settle_s"]) == len(a["capacities"]) == 3
    assert a["auto_over_best"] > 0
    assert len([t for t in data["targets"] if t["figure"].startswith("adaptive: ")]) == 3


def test_quick_mode_leaves_the_docs_alone(quick: Any) -> None:
    """docs/benchmarks.md and .png are regenerated only by a full run."""
    _, _, before = quick
    assert [fingerprint(p) for p in DOCS] == before


def test_dask_overhead_quick_prints_both_sides_and_their_ratio() -> None:
    """bench/dask_overhead.py --quick measures the executor and client.map + gather on one cluster."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dask_overhead.py"), "--quick", "--in-flight", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = {line.split()[0]: float(line.split()[-5 if "ratio" in line else -4]) for line in done.stdout.splitlines()[1:]}
    assert set(figures) == {"client.map", "DaskExecutor.run", "ratio"}
    assert all(math.isfinite(v) and v > 0 for v in figures.values())


def test_the_median_interval_brackets_the_median_and_narrows_with_more_rounds() -> None:
    from bench.overhead import median_interval

    few = [1.0 + (i % 7 - 3) / 100 for i in range(21)]
    many = few * 10
    low, high = median_interval(few)
    assert low <= sorted(few)[10] <= high
    wide, narrow = high - low, median_interval(many)[1] - median_interval(many)[0]
    assert narrow < wide
    assert median_interval([1.0, 2.0]) == (1.0, 2.0)
