"""`orchestrate` under an audit hook, for tests that prove a command has no side effect.

    python tests/audited_cli.py ARGS...   (with PYTHONPATH at the checkout)

Records every network connection, process start and file opened for writing, from inside the
interpreter (audit hooks see what C code does too), and with AUDIT_FOLDER set, every module code
run from that folder (the import system's `exec` event). The last stderr line is
``AUDIT [what was seen]``; the exit code is orchestrate's.
"""

from __future__ import annotations

import os
import sys
from typing import Any

WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# socket.bind is left out: urllib3, imported with botocore, probes IPv6 support by binding a socket
# to ::1 at import time; that opens no connection and sends nothing.
SIDE_EFFECTS = frozenset({
    "socket.connect", "socket.sendto", "socket.sendmsg", "subprocess.Popen", "os.fork", "os.forkpty",
    "os.posix_spawn", "os.spawn", "os.exec", "os.system", "os.remove", "os.rename", "os.mkdir",
})


def main() -> None:
    folder = os.environ.get("AUDIT_FOLDER")
    seen: list[str] = []

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in SIDE_EFFECTS:
            seen.append(event)
        elif event == "exec" and folder:
            filename = str(getattr(args[0], "co_filename", ""))
            if filename.startswith(folder):
                seen.append(f"exec {filename}")
        elif event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & WRITE)
            if writes and not (isinstance(path, int) or str(path).startswith("/dev/")):
                seen.append(f"open-for-write {path}")

    sys.addaudithook(hook)
    from orchestrator.cli.main import main as orchestrate

    code = orchestrate(sys.argv[1:])
    sys.stdout.flush()
    print("AUDIT " + repr(seen), file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
