"""Dry-run time of a 2,000-step playbook, beside plain `yaml.safe_load` of the same file, in one run.

    python bench/plan_scale.py [--steps 2000] [--repeat 3]

The dry run is load (YAML with marks, strict validation) + plan (templates compiled, references
resolved, graph ordered, actions checked) + the text rendering the CLI prints. Best of `--repeat`.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def generate(steps: int) -> str:
    """A playbook shaped like real ones: http calls, fan-outs, waits and cpu steps, chained in layers."""
    lines = [
        "name: plan scale",
        "vars: {api: 'http://127.0.0.1:8700', replicas: 3}",
        "limits: {api: {concurrency: 20, rate: 50/s}}",
        "defaults: {retry: {attempts: 3, delay: 0.2s}, timeout: 30s}",
        "steps:",
    ]
    for i in range(steps):
        dep = f"s{i - 1 - (i % 7)}" if i >= 8 else None
        body = f"{{{{ steps.{dep}.output.json.id }}}}" if dep else "none"
        match i % 4:
            case 0:
                lines += [f"  - id: s{i}", "    limit: api", "    http:", "      method: POST",
                          "      url: \"{{ api }}/v1/networks\"", f"      json: {{name: net-{i}, ref: \"{body}\"}}",
                          "      expect: [201, 202]"]
            case 1:
                lines += [f"  - id: s{i}", "    for_each: \"{{ range(replicas) }}\"", "    concurrency: 4", "    http:",
                          "      method: POST", "      url: \"{{ api }}/v1/vms\"",
                          f"      json: {{name: \"vm-{i}-{{{{ item }}}}\", network: \"{body}\"}}"]
            case 2:
                lines += [f"  - id: s{i}", "    wait_until:", f"      url: \"{{{{ api }}}}/v1/operations/{body}\"",
                          "      until: \"response.json.status == 'done'\"", "      interval: 200ms"]
            case _:
                lines += [f"  - id: s{i}", "    kind: cpu", "    call: tasks:render_config",
                          f"    with: {{vm: {{id: \"{body}\"}}}}"]
    return "\n".join(lines) + "\n"


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import yaml

    from orchestrator.cli.main import main as orchestrate

    text = generate(args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.yml"
        path.write_text(text)
        (Path(tmp) / "tasks.py").write_text("def render_config(vm):\n    return str(vm)\n")

        def dry_run() -> None:
            with redirect_stdout(io.StringIO()):
                code = orchestrate(["--dry-run", str(path)])
            if code != 0:
                raise SystemExit(f"dry run failed with exit code {code}")

        dry_run()  # warm imports and caches once, as a CLI user pays them once per process
        baseline = best(lambda: yaml.safe_load(text), args.repeat)
        engine = best(dry_run, args.repeat)
    print(f"playbook: {args.steps} steps, {len(text) / 1024:.0f} KiB")
    print(f"yaml.safe_load (pure-Python loader) : {baseline:.3f} s")
    print(f"orchestrate --dry-run (load+plan+print): {engine:.3f} s")
    print(f"ratio dry-run / safe_load            : {engine / baseline:.2f}x   (target: dry run under 1.5 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
