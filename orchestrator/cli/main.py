"""`orchestrate`: the command line. A thin client of the same API an ops script uses.

Exit codes: 0 succeeded, 1 a step failed, 2 invalid playbook, configuration or usage, 130 interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING

from orchestrator.cli.arguments import UsageError, build_parser, parse_vars

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from orchestrator import Plan, Reporter, RunResult
    from orchestrator.config import TargetSettings

SUBCOMMANDS = ("sandbox", "check", "schema", "runs")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in SUBCOMMANDS:
        from orchestrator.cli import commands

        return commands.dispatch(args_list[0], args_list[1:])
    # `--dry-run=plan` is the same as `--dry-run`; `--dry-run=reads` is its own flag.
    args = build_parser().parse_args(["--dry-run" if a == "--dry-run=plan" else a for a in args_list])
    try:
        return _run(args)
    except UsageError as exc:
        print(f"orchestrate: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        if sys.stdout.isatty() or not _stdout_closed():
            raise
        # `orchestrate ... | head`: the reader left; silence the interpreter's flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _stdout_closed() -> bool:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    return False


def _run(args: argparse.Namespace) -> int:
    import orchestrator.api as api
    from orchestrator.cli import output
    from orchestrator.config import load_config
    from orchestrator.errors import InvalidInput
    from orchestrator.logs import LogSettings, configure

    log_format = args.log_format or ("console" if sys.stderr.isatty() else "json")
    level = args.log_level or ("warning" if output.wants_progress(args) and not args.dry_run else "info")
    configure(LogSettings(format="json" if log_format == "json" else "console", level=level, colors=sys.stderr.isatty()))
    try:
        overrides = parse_vars(args.var)
        the_plan = api.plan(args.playbook, vars=overrides, config=load_config(args.config))
    except InvalidInput as exc:
        output.diagnostics(exc.diagnostics, args.format, args.playbook)
        return exc.exit_code
    if args.dry_run == "plan":
        output.planned(the_plan, args.format)
        return 0
    from orchestrator.target import embedded_target

    def say(message: str) -> None:
        print(f"orchestrate: {message}", file=sys.stderr)

    # The sandbox starts at the address the plan already names: nothing is planned again.
    with embedded_target(the_plan, given=overrides, say=say) as target:
        result = asyncio.run(_execute(the_plan, args, target))
    output.finished(result, args.format)
    _exit_past_stuck_calls(int(result.exit_code))
    return int(result.exit_code)


def _exit_past_stuck_calls(code: int) -> None:
    """Exit now if blocking calls outlived their steps (a timeout, a cancellation).

    The interpreter waits for the thread pool's threads at exit: a call stuck in a vendor SDK would
    keep `orchestrate` from exiting after its result was printed, and a CI job waiting on it would
    hang. The run is over and recorded, so such calls are left behind, said on stderr."""
    from orchestrator.api import running_blocking_calls

    stuck = running_blocking_calls(grace=0.5)
    if not stuck:
        return
    calls = "call is" if stuck == 1 else "calls are"
    print(f"orchestrate: {stuck} blocking {calls} still running after the step ended; exiting without waiting", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _execute(the_plan: Plan, args: argparse.Namespace, target: TargetSettings) -> RunResult:
    from orchestrator.api import arun
    from orchestrator.cli.output import reporter_for
    from orchestrator.history import RunJournal, history_path

    interrupt = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if interrupt.is_set():  # a second Ctrl-C: stop waiting for cleanup
            view.__exit__(None, None, None)
            if journal is not None:
                with contextlib.suppress(Exception):  # exiting now matters more than the record
                    journal.cut_short()
            print("orchestrate: interrupted again; exiting now", file=sys.stderr)
            os._exit(130)
        print("orchestrate: interrupting: cancelling running steps, then running `finally` (Ctrl-C again to exit now)", file=sys.stderr)
        interrupt.set()

    view = reporter_for(args)
    # Each reporter is guarded apart: a history file that cannot be written must not switch off the view.
    reporters: list[Reporter] = [view]
    history = None if args.dry_run else history_path(the_plan.config.history.path, the_plan.config.history.enabled)
    journal = RunJournal(history, keep=the_plan.config.history.keep) if history is not None else None
    if journal is not None:
        reporters.append(journal)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        with view:
            return await arun(
                the_plan, reporter=reporters, interrupt=interrupt, settings=target, reads_only=args.dry_run == "reads",
                # Nothing the CLI prints or records shows an output: keep only those templates read.
                timeout=args.timeout, outputs="read",
            )
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


if __name__ == "__main__":
    raise SystemExit(main())
