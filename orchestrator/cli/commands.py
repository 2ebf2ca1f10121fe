"""The other commands: `sandbox`, `check`, `schema`, `runs`, `resume` and `completion`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.cli.arguments import build_check_parser, build_schema_parser

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence


def dispatch(name: str, argv: Sequence[str]) -> int:
    if name == "sandbox":
        from orchestrator.sandbox.__main__ import main as sandbox_main

        return sandbox_main(list(argv))
    if name == "schema":
        return schema(argv)
    if name == "runs":
        from orchestrator.cli.runs import runs

        return runs(argv)
    if name == "resume":
        from orchestrator.cli.resume import resume

        return resume(argv)
    if name == "completion":
        from orchestrator.cli.completion import completion

        return completion(argv)
    return check(argv)


def schema(argv: Sequence[str]) -> int:
    build_schema_parser().parse_args(argv)
    from orchestrator.schema import playbook_schema

    print(json.dumps(playbook_schema(), indent=2))
    return 0


def playbook_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()))
        else:
            files.append(path)
    return files


def check(argv: Sequence[str]) -> int:
    from orchestrator.model import cache

    with cache.reading_only():  # `check` leaves no file behind
        return _check(build_check_parser().parse_args(argv))


def _check(args: argparse.Namespace) -> int:
    from orchestrator.api import plan
    from orchestrator.cli import output
    from orchestrator.cli.arguments import UsageError, parse_vars
    from orchestrator.cli.stdin import playbook_target, refuse_unusable, source_name
    from orchestrator.config import load_config
    from orchestrator.errors import Diagnostic, InvalidInput

    try:
        refuse_unusable(args.paths)  # `-` twice, or a terminal to read: said before any file is checked
        config = load_config(args.config)
        overrides = parse_vars(args.var)
    except InvalidInput as exc:
        output.diagnostics(exc.diagnostics, "text", args.config)
        return 2
    except UsageError as exc:
        print(f"orchestrate: error: {exc}", file=sys.stderr)
        return 2
    worst = 0
    checked: list[tuple[str, tuple[Diagnostic, ...]]] = []
    for file in playbook_files(args.paths):
        found: tuple[Diagnostic, ...] = ()
        try:
            plan(playbook_target(str(file)), vars=overrides, config=config)
        except InvalidInput as exc:
            worst, found = 2, exc.diagnostics
            for d in found:
                print(d, file=sys.stderr)
        checked.append((source_name(str(file)), found))
        if args.format == "text" and not found:
            print(f"{source_name(str(file))}: ok")
    if args.format == "json":
        files = [{"file": f, "valid": not ds, "errors": [str(d) for d in ds]} for f, ds in checked]
        print(json.dumps({"status": "valid" if worst == 0 else "invalid", "files": files}, indent=2))
    elif args.format in ("junit", "github"):
        from orchestrator.cli import ci_formats

        print(ci_formats.checked(checked, args.format))
    return worst
