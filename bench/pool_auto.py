"""`workers: auto` on the thread pool against every fixed pool size, for a blocking fan-out.

    .venv/bin/python -m bench.pool_auto [--quick]

200 calls of a blocking 50 ms wait (`time.sleep`, as a synchronous SDK waits on its socket) at
concurrency 200, run through `orchestrator.run` with the thread pool at `workers: auto` and at
4, 8, ... 256 threads, interleaved round by round (best of the rounds). The target: auto within
1.2x the time of the best fixed size, found by nobody having to guess it.
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import measure_rounds, ratio, table, times

PLAYBOOK = """
    name: blocking fan-out
    steps:
      - id: sdk
        kind: blocking
        for_each: "{{{{ range({n}) }}}}"
        concurrency: {n}
        call: waits:wait
        with: {{seconds: 0.05}}
    """
MODULE = "import time\n\n\ndef wait(seconds):\n    time.sleep(seconds)\n"


@dataclass(frozen=True)
class Sizes:
    items: int
    fixed: tuple[int, ...]
    repeat: int


FULL = Sizes(items=200, fixed=(4, 8, 16, 32, 64, 128, 256), repeat=3)
QUICK = Sizes(items=40, fixed=(4, 64), repeat=1)
TARGET_MAX = 1.2


def _cell(folder: Path, workers: int | str) -> Any:
    import orchestrator
    from orchestrator.config import Config, ExecutorSpec

    config = Config()
    config = config.replace(executors={**config.executors, "blocking": ExecutorSpec(type="threads", workers=workers)})
    plan = orchestrator.plan(folder / "playbook.yml", config=config)

    def cell() -> float:
        started = time.perf_counter()
        result = orchestrator.run(plan)
        assert result.status == "succeeded", [s.error for s in result.steps if s.error]
        return time.perf_counter() - started

    return cell


def run(sizes: Sizes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "waits.py").write_text(MODULE)
        (folder / "playbook.yml").write_text(textwrap.dedent(PLAYBOOK.format(n=sizes.items)))
        sizes_asked: list[int | str] = ["auto", *sizes.fixed]
        cells = {str(w): _cell(folder, w) for w in sizes_asked}
        measured = measure_rounds(cells, sizes.repeat)
    fixed = {w: measured[str(w)].best for w in sizes.fixed}
    best = min(fixed, key=lambda w: fixed[w])
    auto = measured["auto"].best
    return {
        "sizes": vars(sizes) | {"fixed": list(sizes.fixed)}, "target_max": TARGET_MAX,
        "auto_s": auto, "fixed_s": {str(w): s for w, s in fixed.items()}, "best_fixed": best,
        "auto_over_best": ratio(auto, fixed[best]),
    }


def report(section: dict[str, Any]) -> str:
    s = section["sizes"]
    rows = [["auto", f"{section['auto_s']:.3f} s", times(section["auto_over_best"])]] + [
        [w, f"{t:.3f} s", times(ratio(t, section["fixed_s"][str(section["best_fixed"])]))] for w, t in section["fixed_s"].items()
    ]
    return (
        f"{s['items']} blocking calls of 50 ms at concurrency {s['items']} on the thread pool, `workers: auto` beside each "
        f"fixed size; best of {s['repeat']} rounds. Auto / best fixed ({section['best_fixed']} threads): "
        f"{times(section['auto_over_best'])} (target ≤ {TARGET_MAX}).\n\n" + table(["workers", "time", "/ best fixed"], rows)
    )


def main() -> None:
    from orchestrator.logs import LogSettings, configure

    configure(LogSettings(level="warning"))
    print(report(run(QUICK if "--quick" in sys.argv else FULL)))


if __name__ == "__main__":
    main()
