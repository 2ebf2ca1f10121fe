"""The command line's arguments: the parser of each command, and `--var` values (`NAME=VALUE`, `@FILE`).

Every parser is built here, so that shell completion (completion.py) walks the same ones the
commands parse with."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from orchestrator import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="orchestrate",
        description="Run an automation playbook: non-blocking steps on asyncio, blocking steps on threads, cpu steps on processes.",
        epilog="Other commands: `orchestrate sandbox` runs the sandbox API; `orchestrate check PATH...` validates playbooks; "
        "`orchestrate schema` prints the playbook JSON Schema; `orchestrate runs` lists recorded runs; `orchestrate resume RUN_ID` continues one; "
        "`orchestrate completion bash|zsh|fish` prints a shell completion script. Exit codes: 0 succeeded, 1 a step failed, "
        "2 invalid input, 130 interrupted.",
    )
    p.add_argument("playbook", help="the playbook file (YAML), or - to read it from standard input")
    _run_options(p)
    p.add_argument(
        "--only", action="append", default=[], metavar="STEP",
        help="run only this main step and the steps it depends on (repeatable); the others end skipped",
    )
    p.add_argument(
        "--skip", action="append", default=[], metavar="STEP",
        help="leave out this main step and the steps that depend on it (repeatable)",
    )
    p.add_argument("--dry-run", action="store_const", const="plan", default=None, help="plan only, with no side effect at all")
    p.add_argument(
        "--dry-run=reads", dest="dry_run", action="store_const", const="reads",
        help="also run the steps that only read (GET, describe/list, read_only: true) so later templates see real data",
    )
    p.add_argument("--version", action="version", version=f"orchestrate {__version__}")
    return p


def build_resume_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="orchestrate resume",
        description="Continue a recorded run that failed, was interrupted or whose controller died, under the same run id: "
        "steps and items that succeeded are not run again.",
        epilog="Refused (exit 2) for an unknown id, a run that succeeded, a run still running, or a playbook, --var or "
        "--config that changed since the run started (unless --force). Exit codes as for a run.",
    )
    p.add_argument("run_id", help="the run's id, or a unique prefix of it (`orchestrate runs` lists them)")
    _run_options(p)
    p.add_argument("--force", action="store_true", help="resume even if the playbook, --var or --config changed since")
    p.add_argument("--history", metavar="FILE", help="the SQLite file the run is recorded in (overrides the configuration)")
    p.set_defaults(dry_run=None)
    return p


def build_check_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="orchestrate check", description="Validate and plan playbooks without running them.")
    p.add_argument("paths", nargs="+", help="playbook files or folders (searched for *.yml / *.yaml), or - for standard input")
    p.add_argument("--config", metavar="FILE")
    p.add_argument("--var", action="append", default=[], metavar="K=V")
    p.add_argument("--format", choices=["text", "json", "junit", "github"], default="text")
    return p


def build_schema_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="orchestrate schema", description="Print the playbook JSON Schema.")


def build_runs_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="orchestrate runs",
        description="List the runs the CLI recorded (newest first), or show one run's steps.",
    )
    p.add_argument("run_id", nargs="?", help="a run id, or a unique prefix of one: show its steps")
    p.add_argument("--limit", type=int, default=20, help="how many runs to list (default 20)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--config", metavar="FILE", help="the configuration whose `history` to read")
    p.add_argument("--history", metavar="FILE", help="the SQLite file to read (overrides the configuration)")
    p.add_argument("--trace", metavar="FILE.json", help="write the run's timeline in the Chrome trace event format (Perfetto)")
    p.add_argument("--html", metavar="FILE.html", help="write the run's timeline as a self-contained web page")
    return p


def build_completion_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="orchestrate completion",
        description="Print the shell code that completes `orchestrate` commands, options, playbooks, step ids and run ids.",
        epilog='bash: eval "$(orchestrate completion bash)" in ~/.bashrc; zsh: eval "$(orchestrate completion zsh)" after '
        "compinit in ~/.zshrc; fish: orchestrate completion fish > ~/.config/fish/completions/orchestrate.fish",
    )
    p.add_argument("shell", choices=["bash", "zsh", "fish"], help="the shell to print the code for")
    return p


def _run_options(p: argparse.ArgumentParser) -> None:
    """The options of a run, shared by `orchestrate PLAYBOOK` and `orchestrate resume RUN_ID`."""
    p.add_argument(
        "--var", action="append", default=[], metavar="K=V",
        help="set a variable (value parsed as YAML), or @FILE for a YAML mapping of variables; repeatable, later ones win",
    )
    p.add_argument("--config", metavar="FILE", help="configuration file replacing config/default.yml")
    p.add_argument(
        "--timeout", metavar="DURATION", type=duration,
        help="bound on the main steps (30s, 10m, ...), replacing the playbook's `timeout:`; when it passes the run fails",
    )
    p.add_argument("--format", choices=["text", "json", "junit", "github"], default="text", help="how results go to stdout")
    p.add_argument("--log-format", choices=["console", "json"], default=None, help="log lines on stderr (default: json unless stderr is a terminal)")
    p.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default=None,
        help="default: info, or warning while the live progress view shows the same events",
    )
    p.add_argument("--no-progress", action="store_true", help="no live progress view, even on a terminal")


def duration(text: str) -> float:
    """A `--timeout` value: a duration longer than zero."""
    from orchestrator.model.values import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration longer than zero, such as 30s or 10m, got {text!r}")
    return seconds


def parse_vars(pairs: Sequence[str]) -> dict[str, Any]:
    """`--var` values in order, later ones winning: `NAME=VALUE`, or `@FILE` for a YAML mapping of
    variables (as Ansible's `-e @file`). A bad file raises InvalidInput located in it."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if pair.startswith("@"):
            out.update(vars_file(pair[1:]))
            continue
        key, sep, raw = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--var expects NAME=VALUE with NAME an identifier, got {pair!r}")
        out[key] = var_value(key, raw)
    return out


def var_value(name: str, raw: str) -> Any:
    """A `--var NAME=VALUE` value: `replicas=5` is the number 5, `tags=[a, b]` a list; text that is
    not YAML stays text. YAML that a file would be refused for (a tag, a recursive alias, an alias
    bomb) is refused here too, naming the variable."""
    from orchestrator.model.source import YamlError, load_yaml

    if not raw.strip():
        return raw
    try:
        return load_yaml(raw, f"--var {name}")[0]
    except YamlError as exc:
        if exc.syntax:
            return raw
        raise UsageError(f"--var {name}: {exc.diagnostics[0].message}") from None


def vars_file(path: str) -> dict[str, Any]:
    """The variables in a YAML file that holds one mapping of NAME: VALUE."""
    from orchestrator.errors import Diagnostic, InvalidInput
    from orchestrator.model.input_file import YamlError, read_source
    from orchestrator.model.source import load_yaml

    try:  # a regular UTF-8 file within the size limit, checked before reading (docs/playbook.md)
        data, smap = load_yaml(read_source(path, f"the variables file given with --var @{path}"), path)
    except YamlError as exc:
        raise InvalidInput(exc.diagnostics) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput([Diagnostic(path, 1, 1, f"a variables file holds a mapping of NAME: VALUE, got {type(data).__name__}")])
    for key in data:
        if not isinstance(key, str) or not key.isidentifier():
            raise InvalidInput([smap.diagnostic([key], f"variable names are identifiers, got {key!r}", key=True)])
    return data


class UsageError(Exception):
    exit_code = 2
