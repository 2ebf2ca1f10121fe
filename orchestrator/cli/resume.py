"""`orchestrate resume RUN_ID`: continue a recorded run under the same run id.

The run's playbook is planned again from its record (the same file, the variables and
configuration it was given); what succeeded is not run again. Everything else is as for a run:
the live view, the history, signals, output formats and exit codes. A run that cannot be resumed
exits 2 with the reason on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.cli.arguments import UsageError, build_resume_parser, parse_vars

if TYPE_CHECKING:
    from collections.abc import Sequence


def resume(argv: Sequence[str]) -> int:
    args = build_resume_parser().parse_args(argv)
    from orchestrator.cli import output
    from orchestrator.cli.main import configure_logs, run_plan
    from orchestrator.config import load_config
    from orchestrator.errors import InvalidInput
    from orchestrator.history import HistoryUnavailable, ResumeRefused, history_path, prepare_resume

    configure_logs(args)
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
    except (ResumeRefused, HistoryUnavailable) as exc:
        print(f"orchestrate: cannot resume: {exc}", file=sys.stderr)
        return 2
    except InvalidInput as exc:
        output.diagnostics(exc.diagnostics, args.format, args.config)
        return exc.exit_code
    except Exception as exc:  # sqlite3.Error: a corrupt or foreign file
        print(f"{path}:1:1: cannot read the run history: {exc}; pass --history FILE", file=sys.stderr)
        return 2
    print(f"orchestrate: resuming run {resumption.run_id}", file=sys.stderr)
    return run_plan(resumption.plan, args, resumption.given, resume=resumption)
