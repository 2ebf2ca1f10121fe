"""Child processes that end with the controller, even when it is killed with SIGKILL.

The controller is the process running the engine: the ``orchestrate`` CLI, or a script calling
``orchestrator.run``. A SIGKILL runs no handler of the controller, so whatever must end with it
has to notice from outside. Two mechanisms, one per kind of child (docs/processes.md says what
happens to each process, on Linux and elsewhere):

* **Python children that run our code** (the process pool's workers) call :func:`die_with_parent`
  first thing. On Linux it arms ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the child
  when the *thread* that forked it ends, so such children are started from a thread that lives as
  long as the process (``executors/processes/startup.py``), and a parent that died before the
  signal was armed is caught by comparing ``getppid()`` with the pid the child was started by.
* **Programs** (``shell`` steps) run code we cannot touch. Arming the signal in them takes a
  ``preexec_fn``, which makes ``subprocess`` fork the whole controller instead of using vfork:
  7.4 ms instead of 1.3 ms per spawn (median of 150, a 58 MB controller), and it is unsafe with
  threads. It would also reach the program only, not the processes it starts. Instead each
  program starts in a process group of its own (``start_new_session``), and :class:`ProgramReaper`
  tells a small reaper process, over a pipe only the controller holds, each group as it starts
  and ends (one ``write`` of a few bytes, about 1.5 µs). However the controller dies, the kernel
  closes its end of the pipe; the reaper reads EOF and kills the groups still listed.

The reaper is one per process, not per run: what it watches is the death of this process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

#: The reaper's whole program, run with ``python -I -S -c`` so that it starts in ~10 ms and imports
#: nothing of the environment. Lines on stdin: ``+PGID`` (a group started), ``-PGID`` (it ended).
_REAPER_SOURCE = """\
import os, signal
groups = set()
pending = b""
while True:
    data = os.read(0, 65536)
    if not data:
        break
    *lines, pending = (pending + data).split(b"\\n")
    for line in lines:
        (groups.add if line[:1] == b"+" else groups.discard)(int(line[1:]))
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""


def die_with_parent(parent: int | None) -> None:
    """In a child process: be killed with SIGKILL when ``parent`` (the pid that started it) ends.

    Linux only (``PR_SET_PDEATHSIG``); elsewhere nothing is armed. Everywhere, a child whose
    parent has already gone (it was reparented before this ran) exits at once. ``None`` means
    the child's current parent, with no such check.
    """
    if parent is None:
        parent = os.getppid()
    if sys.platform == "linux":
        _arm_parent_death_signal()
    # The parent may have died between the fork and the prctl: the signal would never come.
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def _arm_parent_death_signal() -> None:
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # no libc symbols to reach (a static build): nothing armed
        return
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")


class ProgramReaper:
    """Kills the process groups of the programs still running when this process dies.

    :meth:`watch` a group right after its leader starts and :meth:`forget` it once the leader has
    been waited for. The reaper process starts on the first :meth:`watch`. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self._fd: int | None = None  # the write end of the reaper's stdin
        self._pid: int | None = None  # the reaper process
        self._unavailable = False  # the reaper could not start: programs run unguarded

    def ready(self) -> None:
        """Start the reaper process now, before a program: then the program is unguarded only from
        its start to its :meth:`watch` (the event loop's turns that connect its pipes), not also
        while the reaper starts."""
        with self._lock:
            if self._fd is None:
                self._start()

    def watch(self, pgid: int) -> None:
        """The group ``pgid`` (a program started with ``start_new_session``) is running."""
        with self._lock:
            self._groups.add(pgid)
            if self._fd is None and not self._start():
                return
            self._send(b"+%d\n" % pgid)

    def forget(self, pgid: int) -> None:
        """The leader of ``pgid`` has ended and been waited for: the group is no longer ours."""
        with self._lock:
            self._groups.discard(pgid)
            if self._fd is not None:
                self._send(b"-%d\n" % pgid)

    @property
    def pid(self) -> int | None:
        """The reaper process's pid, once started."""
        return self._pid

    def _start(self) -> bool:
        if self._unavailable or not sys.executable or not hasattr(os, "posix_spawn"):  # Windows
            return False
        read_end, write_end = os.pipe()  # both close-on-exec: only the reaper gets the read end, as stdin
        try:
            # posix_spawn, not subprocess: Popen holds an error pipe open in this process until the
            # child has exec'd, and a process forked meanwhile by another thread (a fork-method
            # worker) would inherit it and block Popen until that process exits.
            self._pid = os.posix_spawn(
                sys.executable, [sys.executable, "-I", "-S", "-c", _REAPER_SOURCE], os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, read_end, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                ],
                # Its own session: a Ctrl-C or a signal to the controller's process group must not
                # end the reaper before the controller, when it would be needed.
                setsid=True,
            )
        except OSError:
            os.close(write_end)
            self._unavailable = True
            return False
        finally:
            os.close(read_end)
        self._fd = write_end
        return True

    def _send(self, line: bytes) -> None:
        assert self._fd is not None
        try:
            os.write(self._fd, line)  # a few bytes: atomic on a pipe
        except OSError:
            # The reaper is gone (someone killed it): start another and list the groups again.
            self._stop_reaper()
            if self._start():
                with contextlib.suppress(OSError):
                    os.write(self._fd, b"".join(b"+%d\n" % group for group in self._groups))

    def close(self) -> None:
        """Stop watching, as at this process's exit: the reaper kills the groups still listed and exits."""
        with self._lock:
            self._stop_reaper()

    def _stop_reaper(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._pid is not None:
            # On EOF it kills what is listed and exits at once: reap it. (ChildProcessError: a
            # child watcher that waits for any child, or the reaper's dying, got there first.)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
            self._pid = None

    def _after_fork_in_child(self) -> None:
        # A forked child holding the write end would keep the reaper from ever reading EOF. The
        # child starts a reaper of its own if it runs programs.
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._lock = threading.Lock()
        self._groups = set()
        self._fd = None
        self._pid = None


_REAPER = ProgramReaper()
if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_REAPER._after_fork_in_child)
# At a normal exit the reaper is told so (EOF) and waited for, instead of left for the kernel.
atexit.register(_REAPER.close)


def program_reaper() -> ProgramReaper:
    """This process's :class:`ProgramReaper`."""
    return _REAPER
