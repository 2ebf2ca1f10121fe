"""`orchestrate`: the command line. A thin client of the same API an ops script uses.

Exit codes: 0 succeeded, 1 a step failed, 2 invalid playbook, configuration or usage, 130 interrupted.

Start-up is most of a small run's time, so each command imports what it uses when it uses it
(`lean_imports` says what it leaves out), and the garbage collector stays off except while a run
goes on (`engine/collector.py`, `paused`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import sys
from typing import TYPE_CHECKING

from orchestrator.cli.arguments import UsageError, build_parser, parse_vars
from orchestrator.engine import collector

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from orchestrator import Plan, Reporter, RunResult
    from orchestrator.config import TargetSettings
    from orchestrator.history import Resumption

SUBCOMMANDS = ("sandbox", "check", "schema", "runs", "resume", "completion")
#: Commands that serve until stopped: they collect garbage as any long-running program does.
SERVERS = ("sandbox",)
#: Packages that structlog and tenacity import only because they are installed: `lean_imports`.
_UNUSED = (("structlog", "rich"), ("tenacity", "tornado"))


def main(argv: Sequence[str] | None = None) -> int:
    """The command; `argv` None means it is the program (its arguments are sys.argv's, and the
    process exits when it returns)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Imports, load, plan and printing keep what they allocate: no collection outside the run.
    with collector.paused():
        try:
            code = _command(args_list)
            sys.stdout.flush()  # a reader that left (`| head`) shows here, not at the interpreter's exit
        except BrokenPipeError:
            if sys.stdout.isatty() or not _stdout_closed():
                raise
            # `orchestrate ... | head`: the reader left; silence the interpreter's flush at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = 0
    if argv is None:
        collector.before_exit()
    return code


def _command(args_list: list[str]) -> int:
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (completion.py): nothing runs
        from orchestrator.cli.completion import complete

        return complete()
    if args_list and args_list[0] in SUBCOMMANDS:
        lean_imports(json_logs=_json_logs(args_list))
        from orchestrator.cli import commands

        if args_list[0] in SERVERS:
            with collector.collecting():
                return commands.dispatch(args_list[0], args_list[1:])
        return commands.dispatch(args_list[0], args_list[1:])
    # `--dry-run=plan` is the same as `--dry-run`; `--dry-run=reads` is its own flag.
    args = build_parser().parse_args(["--dry-run" if a == "--dry-run=plan" else a for a in args_list])
    try:
        return _run(args)
    except UsageError as exc:
        print(f"orchestrate: error: {exc}", file=sys.stderr)
        return 2


def lean_imports(json_logs: bool) -> None:
    """Import structlog and tenacity without two packages they use only if installed, in a process
    that has imported none of them yet: rich (with pygments and attrs: 50 to 80 ms of a one-step
    run's start-up here, bench/cli.py) for structlog's console tracebacks, unless logs go to a
    console; and tornado (about 15 ms) for tenacity's tornado coroutines, which nothing here retries.
    Either is imported as usual by whatever needs it afterwards (the progress view, `orchestrate runs`)."""
    for module, unused in _UNUSED:
        if module in sys.modules or unused in sys.modules or (unused == "rich" and not json_logs):
            continue
        sys.modules[unused] = None  # type: ignore[assignment]  # its import fails: "not installed"
        try:
            importlib.import_module(module)
        finally:
            if unused in sys.modules and sys.modules[unused] is None:
                del sys.modules[unused]


def _json_logs(args_list: Sequence[str]) -> bool:
    """Whether a subcommand's logs will be JSON lines: what `--log-format` says, else the default,
    JSON unless stderr is a terminal."""
    for i, arg in enumerate(args_list):
        if arg.startswith("--log-format="):
            return arg.partition("=")[2] == "json"
        if arg == "--log-format" and i + 1 < len(args_list):
            return args_list[i + 1] == "json"
    return not sys.stderr.isatty()


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has left (`orchestrate ... | head`). A BrokenPipeError
    from anywhere else (a step's socket) is an error like any other. The write that failed may have
    dropped what it held, so a flush that succeeds proves nothing: the pipe is asked (POLLERR)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() here, or stdout is not a file
        return False


def _run(args: argparse.Namespace) -> int:
    configure_logs(args)
    import orchestrator.api as api
    from orchestrator.cli import output
    from orchestrator.cli.stdin import playbook_target, source_name
    from orchestrator.config import load_config
    from orchestrator.errors import InvalidInput
    from orchestrator.model import cache

    try:
        # A dry run reads the validated cache and writes nothing to it: it leaves no file behind.
        with cache.reading_only() if args.dry_run else contextlib.nullcontext():
            overrides = parse_vars(args.var)
            config = load_config(args.config)
            # `-`: the playbook's text is read from stdin here, after the options are known to be valid.
            the_plan = api.plan(playbook_target(args.playbook), vars=overrides, config=config, only=args.only, skip=args.skip)
    except InvalidInput as exc:
        output.diagnostics(exc.diagnostics, args.format, source_name(args.playbook))
        return exc.exit_code
    if args.dry_run == "plan":
        output.planned(the_plan, args.format)
        return 0
    return run_plan(the_plan, args, overrides)


def configure_logs(args: argparse.Namespace) -> None:
    """Logs as the run's options say (`--log-format`, `--log-level`), importing only what they need."""
    log_format = args.log_format or ("console" if sys.stderr.isatty() else "json")
    lean_imports(json_logs=log_format == "json")
    from orchestrator.cli import output
    from orchestrator.logs import LogSettings, configure, wants_colour

    level = args.log_level or ("warning" if output.wants_progress(args) and not args.dry_run else "info")
    configure(LogSettings(format="json" if log_format == "json" else "console", level=level, colors=wants_colour(sys.stderr)))


def run_plan(the_plan: Plan, args: argparse.Namespace, given: Iterable[str], resume: Resumption | None = None) -> int:
    """Run `the_plan` (or continue the run `resume` claimed) against the target it needs, print
    the result in the chosen format and return the exit code. `given` are the variables set on
    purpose (an `api` among them is used as it is: no embedded sandbox)."""
    import asyncio

    from orchestrator.cli import output
    from orchestrator.target import embedded_target

    def say(message: str) -> None:
        print(f"orchestrate: {message}", file=sys.stderr)

    # The sandbox starts at the address the plan already names: nothing is planned again.
    with embedded_target(the_plan, given=given, say=say) as target:
        result = asyncio.run(_execute(the_plan, args, target, resume=resume))
    output.finished(result, args.format, the_plan)
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


async def _execute(
    the_plan: Plan, args: argparse.Namespace, target: TargetSettings, resume: Resumption | None = None
) -> RunResult:
    """Run `the_plan` (or continue the run `resume` claimed) with the live view, the history and signals."""
    import asyncio
    import contextlib
    import signal

    from orchestrator.api import arun
    from orchestrator.cli.output import reporter_for
    from orchestrator.history import HistoryUnavailable, RunJournal, history_path
    from orchestrator.logs import get_logger

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
    history: Path | None
    if resume is not None:  # the run goes on being recorded where it was
        history = resume.history
    else:
        try:
            history = None if args.dry_run else history_path(the_plan.config.history.path, the_plan.config.history.enabled)
        except HistoryUnavailable as exc:  # the run goes on unrecorded, as when the file cannot be written
            get_logger().warning("history.unavailable", error=str(exc))
            history = None
    # What the embedded target started for this run lives only as long as it: recorded, so that a
    # resume says so rather than meeting a new, empty target.
    started = [name for name, url in (("sandbox", target.sandbox_url), ("AWS emulator", target.aws_endpoint_url)) if url]
    journal = RunJournal(history, keep=the_plan.config.history.keep, ephemeral=started) if history is not None else None
    if journal is not None:
        reporters.append(journal)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        with view, collector.collecting():
            return await arun(
                None if resume is not None else the_plan, resume=resume, reporter=reporters, interrupt=interrupt, settings=target, reads_only=args.dry_run == "reads",
                # Nothing the CLI prints or records shows an output: keep only those templates read.
                timeout=args.timeout, outputs="read",
            )
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


if __name__ == "__main__":
    raise SystemExit(main())
