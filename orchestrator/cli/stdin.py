"""`-` for a playbook (`orchestrate -`, `orchestrate check -`): its text read from standard input.

The text passes the limits a playbook file passes (`model/source.py`: at most `MAX_FILE_BYTES`,
UTF-8, line ends read as a file's are) and every error about it is located at ``<stdin>:LINE:COL``.
A playbook with no file has no folder of its own: its `call:` modules are imported from the current
directory (`Playbook.base_dir`).

A terminal on stdin is refused (exit 2) instead of read until end of file: `orchestrate -` typed
without a pipe is a forgotten pipe far more often than YAML about to be typed, and a command that
waits without a word looks hung. `cat | orchestrate -` reads a terminal on purpose.

Nothing the run starts reads this stream after it: a `shell` step's program gets its `stdin:` text
or /dev/null (`actions/shell.py`), and a program a `call:` step starts meets end of file.

A run whose playbook came from stdin is recorded without inputs (its text is not kept), so
`orchestrate resume` refuses it, saying so: a playbook that is to be resumable is run from a file.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from orchestrator.cli.arguments import UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import BinaryIO

    from orchestrator.model.playbook import Playbook

#: The playbook argument that means "read it from standard input", as `cat -` and `kubectl -f -`.
STDIN = "-"
#: How errors and results name it.
NAME = "<stdin>"


def source_name(arg: str) -> str:
    """How the playbook argument `arg` is named in errors and results."""
    return NAME if arg == STDIN else arg


def playbook_target(arg: str) -> Playbook | str:
    """What `orchestrator.plan` is given for the playbook argument `arg`: the playbook loaded from
    standard input for `-`, else the path as it is. Raises PlaybookError located at ``<stdin>``."""
    if arg != STDIN:
        return arg
    from orchestrator import loads  # the public API, as any script loads text

    return loads(read_text(), file=NAME)


def refuse_unusable(args: Sequence[str]) -> None:
    """Raise UsageError before anything is read or run if `-` is among `args` and cannot be read:
    given twice (the second would read nothing), or standard input is a terminal or closed."""
    if args.count(STDIN) > 1:
        raise UsageError("`-` (the playbook on standard input) can be given once: standard input is read once")
    if STDIN in args:
        _stream()


def read_text() -> str:
    """The playbook text on standard input, read to its end. Raises UsageError for a terminal or a
    closed stdin, PlaybookError at ``<stdin>:LINE:COL`` for text a playbook file would be refused for."""
    from orchestrator.errors import Diagnostic, PlaybookError
    from orchestrator.model.input_file import MAX_FILE_BYTES, decode_input

    def refused(reason: str, line: int = 1, col: int = 1) -> PlaybookError:
        return PlaybookError([Diagnostic(NAME, line, col, f"cannot read playbook: {reason}")])

    stream = _stream()
    try:
        data = stream.read(MAX_FILE_BYTES + 1)  # one byte more than allowed tells "too large" from "just fits"
    except OSError as exc:
        raise refused(exc.strerror or str(exc)) from None
    return decode_input(data, refused)


def _stream() -> BinaryIO:
    """Standard input's byte stream, if it can be read as a playbook's source."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise UsageError("`-` reads the playbook from standard input, which is closed; pipe the playbook in")
    try:
        terminal = os.isatty(stdin.fileno())
    except (OSError, ValueError):  # not a file descriptor (an embedding replaced sys.stdin): read it as it is
        terminal = False
    if terminal:
        raise UsageError(
            "`-` reads the playbook from standard input, which is a terminal: pipe it in "
            "(`orchestrate - < deploy.yml`, `generate | orchestrate -`), or give the playbook's file"
        )
    return stdin.buffer
