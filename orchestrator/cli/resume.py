"""`orchestrate resume RUN_ID`: continue a recorded run under the same run id.

The run's playbook is planned again from its record (the same file, the variables and
configuration it was given); what succeeded is not run again. Everything else is as for a run:
the live view, the history, signals, output formats and exit codes. A run that cannot be resumed
exits 2 with the reason on stderr.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.cli.arguments import UsageError, build_resume_parser, parse_vars

if TYPE_CHECKING:
    from collections.abc import Sequence


def resume(argv: Sequence[str]) -> int:
    args = build_resume_parser().parse_args(argv)
    from orchestrator.cli import output
    from orchestrator.cli.main import _execute, _exit_past_stuck_calls
    from orchestrator.config import load_config
    from orchestrator.errors import InvalidInput
    from orchestrator.history import ResumeRefused, history_path, prepare_resume
    from orchestrator.logs import LogSettings, configure
    from orchestrator.target import embedded_target

    log_format = args.log_format or ("console" if sys.stderr.isatty() else "json")
    level = args.log_level or ("warning" if output.wants_progress(args) else "info")
    configure(LogSettings(format="json" if log_format == "json" else "console", level=level, colors=sys.stderr.isatty()))
    path: Path | None = None
    try:
        overrides = parse_vars(args.var)
        config = load_config(args.config) if args.config else None
        settings = (config or load_config()).history
        path = Path(args.history).expanduser() if args.history else history_path(settings.path, settings.enabled)
        if path is None:
            print("orchestrate: cannot resume: the run history is off (history.enabled: false, or ORCHESTRATOR_HISTORY=off); "
                  "pass --history FILE", file=sys.stderr)
            return 2
        resumption = prepare_resume(path, args.run_id, vars=overrides, config=config, force=args.force)
    except UsageError as exc:
        print(f"orchestrate: error: {exc}", file=sys.stderr)
        return 2
    except ResumeRefused as exc:
        print(f"orchestrate: cannot resume: {exc}", file=sys.stderr)
        return 2
    except InvalidInput as exc:
        output.diagnostics(exc.diagnostics, args.format, args.config)
        return exc.exit_code
    except Exception as exc:  # sqlite3.Error: a corrupt or foreign file
        print(f"{path}:1:1: cannot read the run history: {exc}; pass --history FILE", file=sys.stderr)
        return 2

    def say(message: str) -> None:
        print(f"orchestrate: {message}", file=sys.stderr)

    print(f"orchestrate: resuming run {resumption.run_id}", file=sys.stderr)
    with embedded_target(resumption.plan, given=resumption.given, say=say) as target:
        result = asyncio.run(_execute(resumption.plan, args, target, resume=resumption))
    output.finished(result, args.format)
    _exit_past_stuck_calls(int(result.exit_code))
    return int(result.exit_code)
