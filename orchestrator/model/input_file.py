"""Reading an input file (playbook, ``--config``, ``--var @FILE``) within the limits on input.

A regular file (not a directory, FIFO or device) of at most `MAX_FILE_BYTES`, checked before
reading it, and UTF-8 (``docs/playbook.md``, "Limits on input"). Apart from the YAML loader
(`model/source.py`) so that reading a playbook whose records are in the validated cache imports no YAML.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from orchestrator.errors import Diagnostic

if TYPE_CHECKING:
    from collections.abc import Callable

#: Largest input file (and document) read: 4 MiB, some 24,000 steps of a typical playbook.
MAX_FILE_BYTES = 4 * 1024 * 1024
LIMIT = f"{MAX_FILE_BYTES // 1024 // 1024} MiB ({MAX_FILE_BYTES:,} bytes)"


class YamlError(Exception):
    """Every problem of one input, located. `syntax` says the text is not YAML at all (rather than
    YAML this loader refuses: a tag, an alias bomb, a file too large)."""

    def __init__(self, diagnostics: list[Diagnostic], *, syntax: bool = False) -> None:
        super().__init__("\n".join(map(str, diagnostics)))
        self.diagnostics = diagnostics
        self.syntax = syntax


def read_source(path: str | os.PathLike[str], what: str) -> str:
    """The text of the input file at `path` (`what` names it in errors: "playbook", ...).

    Raises YamlError at ``FILE:1:1`` unless `path` is a regular file of at most `MAX_FILE_BYTES`:
    both are checked before a byte is read, so `/dev/zero`, a FIFO or a directory is refused at
    once. Text that is not UTF-8 is refused at the line and column of its first bad byte. Line
    ends are read as `open()` reads them (``\r\n`` and ``\r`` become ``\n``)."""
    file = os.fspath(path)

    def refused(reason: str, line: int = 1, col: int = 1) -> YamlError:
        return YamlError([Diagnostic(file, line, col, f"cannot read {what}: {reason}")])

    try:
        # Not opened first: opening a FIFO for reading waits for a writer.
        mode = os.stat(file).st_mode
        if not stat.S_ISREG(mode):
            raise refused(_not_regular(mode))
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise refused(exc.strerror or str(exc)) from None
    with os.fdopen(fd, "rb") as stream:
        st = os.fstat(fd)  # the file opened, which may not be the one checked above
        if not stat.S_ISREG(st.st_mode):
            raise refused(_not_regular(st.st_mode))
        if st.st_size > MAX_FILE_BYTES:
            raise refused(f"it is {st.st_size:,} bytes, over the {LIMIT} limit on input files")
        try:
            data = stream.read(st.st_size + 1)  # read(n) sets n bytes aside: no more than the file needs
            if len(data) > st.st_size:  # it grew since, or its size says nothing (/proc)
                data += stream.read(MAX_FILE_BYTES + 1 - len(data))
        except OSError as exc:
            raise refused(exc.strerror or str(exc)) from None
    return decode_input(data, refused)


def decode_input(data: bytes, refused: Callable[..., Exception]) -> str:
    """The text of `data`, read from an input file or stream (at most `MAX_FILE_BYTES` + 1 bytes:
    one more tells too large from just fitting). `refused(reason, line, col)` makes the error for
    data over the limit, or not UTF-8 (at the line and column of its first bad byte). Line ends are
    read as `open()` reads them (``\r\n`` and ``\r`` become ``\n``)."""
    if len(data) > MAX_FILE_BYTES:
        raise refused(f"it is over the {LIMIT} limit on input files")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        col = len(data[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise refused(f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8", line, col) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _not_regular(mode: int) -> str:
    kind = (
        "a directory" if stat.S_ISDIR(mode)
        else "a FIFO" if stat.S_ISFIFO(mode)
        else "a character device" if stat.S_ISCHR(mode)
        else "a block device" if stat.S_ISBLK(mode)
        else "a socket" if stat.S_ISSOCK(mode)
        else "not a file"
    )
    return f"not a regular file ({kind}); give the path of a YAML file"
