"""One section of the benchmark suite, measured in this process and written as JSON.

    .venv/bin/python -m bench.section NAME [--quick] OUT.json

`python -m bench` runs every section so, each in a fresh interpreter: a section's figures do not
depend on what the sections before it left in the process (a heap grown by the talk table, pools
and their threads, imported modules), nor on the order of the sections.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import adaptive, cli, journal, overhead, pool_auto, scale, talk_table
from bench.common import write_json

#: The sections, in the order the suite runs and reports them; each has run(Sizes), FULL and QUICK.
SECTIONS = {
    "talk_table": talk_table, "overhead": overhead, "scale": scale, "journal": journal, "cli": cli,
    "adaptive": adaptive, "pool_auto": pool_auto,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.section", description="Measure one section of the suite.")
    parser.add_argument("name", choices=list(SECTIONS))
    parser.add_argument("out", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    from orchestrator.logs import LogSettings, configure

    # A program configures logging; the engine's per-step info events are filtered, as in a quiet run.
    configure(LogSettings(level="warning"))
    module = SECTIONS[args.name]
    write_json(args.out, module.run(module.QUICK if args.quick else module.FULL))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
