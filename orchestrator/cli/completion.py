"""Shell completion for `orchestrate` in bash, zsh and fish, through argcomplete.

`orchestrate completion SHELL` prints argcomplete's shell code for `orchestrate` (docs/cli.md says
where to put it). At each TAB the shell runs `orchestrate` again, with `_ARGCOMPLETE`, `COMP_LINE`
and `COMP_POINT` in its environment; `main` hands that process to `complete`, which builds the
parser of the command being typed (the parsers the commands parse with, from arguments.py), gives
its arguments their completers (completers.py) and lets argcomplete write the candidates to file
descriptor 8 and exit. Nothing runs, nothing is written.

argcomplete rather than scripts written per shell: it walks the real parsers, so a new option
completes without a change here, and the candidates that depend on the command line (step ids of
the playbook on it, run ids of the history it names) are Python, written once for three shells.

argcomplete is imported only here, and this module only to complete or to print the shell code:
a run imports neither (tests/cli/test_completion.py checks).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from orchestrator.cli import arguments, completers

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    #: argcomplete's completer protocol, narrowed to what these use: the word typed so far and
    #: what was parsed of the command line before it.
    Completer = Callable[..., Iterable[str] | Mapping[str, str]]

PROGRAM = "orchestrate"
SHELLS = ("bash", "zsh", "fish")

#: The subcommands, each with what it does: offered with the playbooks for the first word.
COMMANDS = {
    "check": "validate and plan playbooks without running them",
    "completion": "print the shell code that completes orchestrate",
    "resume": "continue a recorded run that did not succeed",
    "runs": "list the recorded runs, or show one",
    "sandbox": "serve the sandbox API until Ctrl-C",
    "schema": "print the playbook JSON Schema",
}


def completion(argv: Sequence[str]) -> int:
    """`orchestrate completion SHELL`: print the code that makes SHELL complete `orchestrate`."""
    args = arguments.build_completion_parser().parse_args(argv)
    print(shell_code(args.shell), end="")
    return 0


def shell_code(shell: str) -> str:
    """argcomplete's code for `shell`. `use_defaults=False`: where nothing matches (no step ids,
    no resumable runs) the shell offers nothing, not every file of the folder."""
    from argcomplete.shell_integration import shellcode

    return shellcode([PROGRAM], use_defaults=False, shell=shell)


def complete() -> int:
    """Answer the shell's TAB on file descriptor 8 and exit (argcomplete exits the process)."""
    import argcomplete
    from argcomplete.lexers import split_line

    words = split_line(os.environ.get("COMP_LINE", ""), int(os.environ.get("COMP_POINT", "0")))[3]
    # `_ARGCOMPLETE` says which word is the program: 1 for `orchestrate ...`, as argcomplete reads it.
    start = max(int(os.environ.get("_ARGCOMPLETE") or "1") - 1, 0)
    # Options are offered once a `-` is typed, as git and kubectl do: a bare TAB lists commands,
    # playbooks, steps or runs, not fifteen options.
    argcomplete.autocomplete(parser_for(words[start:]), always_complete_options=False)
    return 1  # not reached unless argcomplete found no completion request to answer


def parser_for(words: Sequence[str]) -> argparse.ArgumentParser:
    """The parser to complete with, for a command line whose words before the cursor are `words`
    (the program first): the subcommand's, when one is typed (as `main` dispatches), else the run's."""
    command = words[1] if len(words) > 1 else None
    if command is None or command not in COMMANDS:
        return _completing(arguments.build_parser(), _RUN)
    parser = _completing(_BUILDERS[command](), _SUBCOMMANDS.get(command, {}))
    root = argparse.ArgumentParser(prog=PROGRAM, add_help=False)
    # As a subparser, the subcommand's word is consumed before its own arguments are parsed.
    root.add_subparsers().add_parser(command, parents=[parser], add_help=False)
    return root


def _completing(parser: argparse.ArgumentParser, by_dest: Mapping[str, Completer]) -> argparse.ArgumentParser:
    for action in parser._actions:  # argparse keeps no public list; argcomplete walks the same one
        if action.dest in by_dest:
            action.completer = by_dest[action.dest]  # type: ignore[attr-defined]  # argcomplete's documented hook
    return parser


def _sandbox_parser() -> argparse.ArgumentParser:
    from orchestrator.sandbox.__main__ import build_parser

    return build_parser()


_BUILDERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "check": arguments.build_check_parser,
    "completion": arguments.build_completion_parser,
    "resume": arguments.build_resume_parser,
    "runs": arguments.build_runs_parser,
    "sandbox": _sandbox_parser,
    "schema": arguments.build_schema_parser,
}


# -- completers: argcomplete calls each with keywords (prefix, action, parser, parsed_args) ------------


def _playbook_or_command(prefix: str, **_: Any) -> dict[str, str]:
    out = {name: about for name, about in COMMANDS.items() if name.startswith(prefix)}
    return out | dict.fromkeys(completers.paths(prefix), "")


def _yaml_paths(prefix: str, **_: Any) -> list[str]:
    return completers.paths(prefix)


def _step_ids(prefix: str, parsed_args: argparse.Namespace, action: argparse.Action, **_: Any) -> list[str]:
    given = set(getattr(parsed_args, action.dest, None) or ())  # `--only a --only <TAB>`: not `a` again
    return [i for i in completers.main_step_ids(getattr(parsed_args, "playbook", None)) if i not in given]


def _var_files(prefix: str, **_: Any) -> list[str]:
    """`--var @FILE`: a YAML file of variables."""
    return ["@" + path for path in completers.paths(prefix[1:])] if prefix.startswith("@") else []


def _variables(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """`--var NAME=` for each variable the playbook declares, or `--var @FILE`."""
    if prefix.startswith("@"):
        return _var_files(prefix)
    return [f"{name}=" for name in completers.variable_names(getattr(parsed_args, "playbook", None))]


def _run_ids(resumable: bool) -> Completer:
    def complete_run_id(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> dict[str, str]:
        history = completers.history_file(getattr(parsed_args, "history", None), getattr(parsed_args, "config", None))
        return completers.run_ids(history, resumable=resumable)

    return complete_run_id


#: The run's arguments (`orchestrate PLAYBOOK ...`) and the subcommands', by `dest`.
_RUN: dict[str, Completer] = {
    "playbook": _playbook_or_command, "only": _step_ids, "skip": _step_ids, "var": _variables, "config": _yaml_paths,
}
_SUBCOMMANDS: dict[str, dict[str, Completer]] = {
    "check": {"paths": _yaml_paths, "var": _var_files, "config": _yaml_paths},
    "resume": {"run_id": _run_ids(resumable=True), "var": _var_files, "config": _yaml_paths},
    "runs": {"run_id": _run_ids(resumable=False), "config": _yaml_paths},
}
