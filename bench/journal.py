"""The cost of the durable journal: the same runs with the history recording them and without.

    .venv/bin/python -m bench.journal [--quick]

Two workloads, each run through `orchestrator.arun` with a `RunJournal` on a SQLite file (one that
exists already, as a user's history does) and with none, interleaved round by round (best of the rounds):
- a `for_each` of `set` over 100,000 items: the engine's cheapest item, so the journal's per-item
  cost (each item recorded as it succeeds, committed in batches) is as visible as it can be;
  also with its output read by a later step, so every item's output is recorded too;
- 1,000 GETs against the sandbox at 50 ms latency, concurrency 100: a realistic fan-out, where the
  journal must not show.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import measure_rounds, ratio, say, table, times

SET_FANOUT = """
    name: journal-set
    steps:
      - id: items
        for_each: "{{{{ range({n}) }}}}"
        concurrency: 10
        set: {{i: "{{{{ index }}}}"}}
    {reader}
    """
READ = """  - {id: reader, needs: [items], set: {count: "{{ steps.items.output | length }}"}}"""
GET_FANOUT = """
    name: journal-get
    steps:
      - id: gets
        for_each: "{{{{ range({n}) }}}}"
        concurrency: 100
        http: {{method: GET, url: "{{{{ api }}}}/v1/vms"}}
    """


@dataclass(frozen=True)
class Sizes:
    items: int
    gets: int
    repeat: int


FULL = Sizes(items=100_000, gets=1_000, repeat=5)
QUICK = Sizes(items=5_000, gets=100, repeat=1)

#: Targets: a run recorded by the journal against the same run unrecorded.
SET_TARGET_MAX = 1.5
GET_TARGET_MAX = 1.05


def _cell(text: str, folder: Path, journal: bool, vars: dict[str, Any] | None = None) -> Any:
    import orchestrator
    from orchestrator.history import RunJournal

    path = folder / "playbook.yml"
    path.write_text(textwrap.dedent(text))
    plan = orchestrator.plan(path, vars=vars)
    history = folder / "runs.sqlite"
    if journal:  # a history that exists, as a user's does after the first run (creating one costs ~20 ms)
        from orchestrator.history.store import open_for_writing

        open_for_writing(history).close()

    def cell() -> float:
        reporter = [RunJournal(history)] if journal else None
        result = asyncio.run(orchestrator.arun(plan, reporter=reporter, outputs="read"))
        assert result.status == "succeeded", [s.error for s in result.steps if s.error]
        return result.duration_s

    return cell


def run(sizes: Sizes) -> dict[str, Any]:
    from orchestrator.sandbox import SandboxProcess, SandboxSettings

    out: dict[str, Any] = {"sizes": vars(sizes), "targets": {"set_max": SET_TARGET_MAX, "get_max": GET_TARGET_MAX}}
    with tempfile.TemporaryDirectory() as scratch, SandboxProcess(SandboxSettings(latency=0.05)) as sandbox:
        root = Path(scratch)
        cells = {}
        for name, text in {
            "set": SET_FANOUT.format(n=sizes.items, reader=""),
            "set, output read": SET_FANOUT.format(n=sizes.items, reader=READ),
            "get": GET_FANOUT.format(n=sizes.gets),
        }.items():
            for journal in (False, True):
                folder = root / f"{name}-{journal}".replace(" ", "").replace(",", "")
                folder.mkdir()
                cells[(name, journal)] = _cell(text, folder, journal, {"api": sandbox.url} if name == "get" else None)
        say(f"journal: {len(cells)} cells x {sizes.repeat} rounds")
        measured = measure_rounds({f"{n}|{j}": c for (n, j), c in cells.items()}, sizes.repeat)
    rows = {}
    for name in ("set", "set, output read", "get"):
        off, on = measured[f"{name}|False"].best, measured[f"{name}|True"].best
        rows[name] = {"without_s": off, "with_s": on, "ratio": ratio(on, off)}
    out["workloads"] = rows
    return out


def report(section: dict[str, Any]) -> str:
    s = section["sizes"]
    names = {
        "set": f"`for_each` of `set`, {s['items']:,} items",
        "set, output read": f"the same, its output read by a later step ({s['items']:,} outputs recorded)",
        "get": f"{s['gets']:,} GETs, 50 ms latency, concurrency 100",
    }
    targets = {"set": f"≤ {SET_TARGET_MAX}", "set, output read": "", "get": f"≤ {GET_TARGET_MAX}"}
    rows = [
        [names[k], f"{w['without_s']:.3f} s", f"{w['with_s']:.3f} s", times(w["ratio"]), targets[k]]
        for k, w in section["workloads"].items()
    ]
    return (
        "The same runs through `arun`, recorded by a `RunJournal` (the history the CLI keeps, which `orchestrate "
        "resume` reads) and unrecorded; best of the rounds.\n\n"
        + table(["workload", "no journal", "journal", "ratio", "target"], rows)
    )


def main() -> None:
    from orchestrator.logs import LogSettings, configure

    configure(LogSettings(level="warning"))
    print(report(run(QUICK if "--quick" in sys.argv else FULL)))


if __name__ == "__main__":
    main()
