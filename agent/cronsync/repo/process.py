"""The one place cronsync starts helper programs (git, bash -n, shellcheck, ...).

Commands are argv tuples built by the caller; no command line is ever built for a
shell (the keeper below gets the argv as its arguments, ``"$@"``).

Every program runs in a session of its own (no terminal to prompt on, and out of reach
of a terminal's signals) and dies with cronsync, helpers included. A program runs under
a keeper, a fixed ``/bin/sh`` script that starts it and, on SIGTERM, sends SIGTERM to
the whole process group: git's own children (``git-remote-https``, ``ssh``) would
otherwise outlive git. On Linux the keeper asks the kernel for SIGTERM when cronsync
dies (``setpriv --pdeathsig``, or ``prctl(PR_SET_PDEATHSIG)`` between fork and exec
where util-linux's setpriv is missing), so even a ``kill -9`` of cronsync stops the
group, and git's handlers still remove its lock files.
:func:`stop_children` (the agent's SIGTERM) ends every running program in order:
SIGTERM to its process group, SIGKILL after :data:`GRACE_SECONDS`, and a program asked
for after that is not started: :class:`StoppedError`.

The parent-death signal is sent when the *thread* that started the child ends: start
programs from a thread that waits for them (every caller here does).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from cronsync.core.errors import SourceError

GRACE_SECONDS = 5.0
"""After SIGTERM, how long a stopped program may take before it gets SIGKILL."""

_POLL_SECONDS = 0.5  # how often a waiting caller looks at a stop request
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

KEEPER = "/bin/sh"
# Starts "$@" in the background (same process group: no job control) and waits for it;
# on SIGTERM, forgets its trap and sends SIGTERM to the whole group, itself included.
# Without a signal its status is the program's (wait's).
_KEEPER_SCRIPT = 'trap "trap - TERM; kill -TERM 0" TERM; "$@" & wait "$!"'
# The same behind setpriv --pdeathsig, given cronsync's pid first: when cronsync died
# before setpriv asked for the signal, the shell's parent is another process already
# and nothing is started (exit 125).
_GUARDED_KEEPER_SCRIPT = '[ "$PPID" = "$1" ] || exit 125; shift; ' + _KEEPER_SCRIPT
_SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"


class StoppedError(SourceError):
    """A helper program was stopped, or not started, because cronsync is shutting down."""


@dataclass(frozen=True)
class Completed:
    """What a finished program returned."""

    returncode: int
    stdout: str
    stderr: str


class _Children:
    """The programs running now, and whether a stop was asked for.

    Touched from signal handlers (which run in the main thread between two bytecodes):
    only GIL-atomic dict and attribute operations, no locks.
    """

    def __init__(self) -> None:
        self.running: dict[int, subprocess.Popen[bytes]] = {}
        self.stop_asked: Optional[float] = None  # time.monotonic() of the request


_CHILDREN = _Children()


def stop_children() -> None:
    """Stop every running program and refuse new ones (the agent's SIGTERM).

    Safe to call from a signal handler: sends SIGTERM to each program's process group
    and returns; the callers waiting for them send SIGKILL after :data:`GRACE_SECONDS`.
    """
    if _CHILDREN.stop_asked is None:
        _CHILDREN.stop_asked = time.monotonic()
    for pid in list(_CHILDREN.running):
        _signal_group(pid, signal.SIGTERM)


def stopping() -> bool:
    """Whether :func:`stop_children` was called."""
    return _CHILDREN.stop_asked is not None


def _signal_group(pid: int, signum: int) -> None:
    """Send ``signum`` to the process group ``pid`` leads (gone already is fine)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _stopped(argv: Sequence[str]) -> StoppedError:
    name = os.path.basename(argv[0]) if argv else "a program"
    return StoppedError(f"{name} was stopped: cronsync is shutting down")


@functools.lru_cache(maxsize=1)
def _setpriv() -> Optional[str]:
    """util-linux's ``setpriv`` (it sets the parent-death signal, then execs), or None."""
    if not sys.platform.startswith("linux"):
        return None
    return shutil.which("setpriv", path=_SYSTEM_PATH)


def _keeper(program: str, args: Sequence[str]) -> tuple[list[str], Optional[Callable[[], None]]]:
    """The argv that runs ``program`` under the keeper and dies with this process, and
    the function the child must run before exec for that (None when none is needed).

    With ``setpriv`` the child asks for the signal itself, after exec, so ``Popen`` can
    start it with vfork: a fork of a big process copies its page tables, which costs
    tens of milliseconds per git command in a test run (one millisecond with vfork).
    Without it, ``prctl`` is called between fork and exec.
    """
    setpriv = _setpriv()
    if setpriv is not None:
        argv = [setpriv, "--pdeathsig", "TERM", "--", KEEPER, "-c", _GUARDED_KEEPER_SCRIPT]
        return [*argv, "cronsync-keeper", str(os.getpid()), program, *args], None
    argv = [KEEPER, "-c", _KEEPER_SCRIPT, "cronsync-keeper", program, *args]
    return argv, _die_with_parent()


@functools.lru_cache(maxsize=1)
def _libc_prctl() -> Optional[Any]:
    """libc's ``prctl`` (a ctypes function) on Linux, None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def _die_with_parent() -> Optional[Callable[[], None]]:
    """The function the child runs between fork and exec, so that it gets SIGTERM when
    this process dies (None where Linux's prctl is missing).

    It calls only a ctypes function prepared beforehand and ``os.getppid``: nothing
    that takes a lock another thread of the parent could have held at the fork.

    Raises (in the child, which then exits before exec; ``Popen`` raises
    ``SubprocessError`` in the parent):
        OSError: prctl failed.
        ChildProcessError: this process died before the child could ask.
    """
    prctl = _libc_prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # it died between fork and prctl: no signal would come
            raise ChildProcessError("the parent died before the child started")

    return preexec


def spawn(
    argv: Sequence[str],
    *,
    cwd: Optional[Path] = None,
    env: Optional[Mapping[str, str]] = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` (stdin from /dev/null, stdout and stderr piped), in a session of
    its own, dying with this process; it is stopped by :func:`stop_children`.

    Call :func:`release` once it has ended (``run_capture`` does). Its pid is the
    keeper's (the group's leader); its exit status the program's, 128+N when signal N
    ended it.

    Raises:
        OSError: the program could not be started (not installed, not executable).
        StoppedError: cronsync is shutting down.
    """
    if stopping():
        raise _stopped(argv)
    path = (os.environ if env is None else env).get("PATH", os.defpath)
    program = shutil.which(argv[0], path=path) if argv else None
    if program is None:
        raise FileNotFoundError(errno.ENOENT, "No such program", argv[0] if argv else "")
    keeper, before_exec = _keeper(program, argv[1:])
    proc = subprocess.Popen(
        keeper,
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        # Safe with threads here: it runs one prepared ctypes call and os.getppid, no
        # code that could wait for a lock another thread held at the fork.
        preexec_fn=before_exec,  # noqa: PLW1509
    )
    _CHILDREN.running[proc.pid] = proc
    if stopping():  # the stop came while it started
        _signal_group(proc.pid, signal.SIGTERM)
    return proc


def release(proc: subprocess.Popen[bytes]) -> None:
    """Forget an ended program (its process group may be gone)."""
    _CHILDREN.running.pop(proc.pid, None)


def end_group(proc: subprocess.Popen[bytes], grace: float = GRACE_SECONDS) -> None:
    """End ``proc``'s process group in order: SIGTERM, then SIGKILL when ``proc`` is
    still there ``grace`` seconds later; reap it and close its pipes."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def run_capture(
    argv: Sequence[str],
    *,
    timeout: Optional[float] = 60.0,
    cwd: Optional[Path] = None,
    env: Optional[Mapping[str, str]] = None,
) -> Completed:
    """Run ``argv`` to completion and capture its output as text.

    Args:
        argv: the program and its arguments.
        timeout: seconds before the program (and its process group) is ended; None
            for no limit.
        cwd: directory to run in.
        env: its whole environment (None: this process's).

    Returns:
        Its exit code, stdout and stderr (decoded leniently).

    Raises:
        OSError: the program could not be started (not installed, not executable).
        subprocess.TimeoutExpired: it ran longer than ``timeout``.
        StoppedError: cronsync is shutting down (it was ended, or not started).
    """
    proc = spawn(argv, cwd=cwd, env=env)
    try:
        out, err = _communicate(proc, argv, timeout)
    except StoppedError:
        end_group(proc, grace=0.0)  # it had its grace already
        raise
    except BaseException:
        end_group(proc)
        raise
    finally:
        release(proc)
    if stopping():
        raise _stopped(argv)
    return Completed(proc.returncode, _text(out), _text(err))


def _communicate(
    proc: subprocess.Popen[bytes], argv: Sequence[str], timeout: Optional[float]
) -> tuple[bytes, bytes]:
    """Wait for ``proc``'s output in slices, looking at stop requests in between.

    Raises:
        subprocess.TimeoutExpired: ``timeout`` seconds passed.
        StoppedError: a stop was asked for and the grace is over.
    """
    deadline = math.inf if timeout is None else time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            return proc.communicate(timeout=max(0.0, min(left, _POLL_SECONDS)))
        except subprocess.TimeoutExpired:
            asked = _CHILDREN.stop_asked
            if asked is not None and time.monotonic() - asked > GRACE_SECONDS:
                raise _stopped(argv) from None
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(list(argv), timeout or 0.0) from None


def _text(data: Optional[bytes]) -> str:
    return (data or b"").decode("utf-8", "replace")
