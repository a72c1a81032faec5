"""Run a job's process: its own process group, output through the pump, a timeout that
sends TERM then KILL to the whole group, and TERM/INT/HUP sent to us passed on to it
(followed by KILL of the group after the grace period when it is still running).

The only place cronsync starts a job's command: with ``os.posix_spawn`` rather than
``subprocess`` (whose import alone costs the shim about a fifth of its start-up), with
what ``subprocess.Popen(start_new_session=True, close_fds=True)`` would give the job:
a new session, stdin from /dev/null, stdout and stderr on pipes, no other descriptor
(but those the caller passes on: the run lock's),
SIGPIPE and SIGXFSZ back to their defaults, the program looked up in the job's own
PATH, and a start-up failure raised here as the OSError of ``execve``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import time

from cronsync.core.frozen import Frozen
from cronsync.core.logformat import ERR, OUT
from cronsync.core.suppress import suppress
from cronsync.run.pump import READ_SIZE, read_chunk

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    import signal
    from collections.abc import Mapping, Sequence
    from types import FrameType
    from typing import Any, Callable, Optional

    from cronsync.run.pump import OutputPump
else:  # `signal` imports `enum` to make its constants: milliseconds at every start
    import _signal as signal


FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
SIGNAL_NAMES: dict[int, str] = {
    signal.SIGTERM: "SIGTERM",
    signal.SIGINT: "SIGINT",
    signal.SIGHUP: "SIGHUP",
}
DRAIN_SECONDS = 2.0  # after the job exits, how long a grandchild may hold its pipes


class ProcessResult(Frozen):
    """How a job's process ended.

    Attributes:
        exit_code: the shell-style code: the process's own, or 128+N for signal N.
        signal: the signal that ended it, if any.
        timed_out: it ran past its timeout and was stopped.
        interrupted: a signal we received and passed on (e.g. SIGTERM from a stop).
    """

    # the fields, in order
    __slots__ = (  # noqa: RUF023
        "exit_code",
        "signal",
        "timed_out",
        "interrupted",
    )
    exit_code: int
    signal: Optional[int]
    timed_out: bool
    interrupted: Optional[int]

    def __init__(
        self, exit_code: int, signal: Optional[int], timed_out: bool, interrupted: Optional[int]
    ) -> None:
        self._fill(exit_code, signal, timed_out, interrupted)


class _Child:
    """A started job: its pid (also its session's and process group's id), the read
    ends of its stdout and stderr pipes, and how it ended once reaped."""

    def __init__(self, pid: int, stdout: int, stderr: int) -> None:
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: Optional[int] = None

    def poll(self) -> Optional[int]:
        """Reap the child if it has ended; return its code as ``Popen.returncode`` has
        it (-N for signal N), or None while it runs."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: nothing more to learn
                self.returncode = 255
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float) -> Optional[int]:
        """Wait up to ``timeout`` seconds for the child to end; its code, or None."""
        end = time.monotonic() + timeout
        delay = 0.0005
        while self.poll() is None:
            left = end - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)
        return self.returncode

    def close_pipes(self) -> None:
        for fd in (self.stdout, self.stderr):
            with suppress(OSError):
                os.close(fd)


def _candidates(program: str, env: Mapping[str, str]) -> list[str]:
    """Where ``execvpe`` would look for ``program``: itself when it names a path, else
    each directory of the job's PATH (the default path when it has none)."""
    if "/" in program:
        return [program]
    # not os.get_exec_path: it imports warnings (milliseconds at every start)
    folders = env.get("PATH", os.defpath).split(os.pathsep)
    return [os.path.join(folder or ".", program) for folder in folders]


def _inherited_fds() -> list[int]:
    """Our descriptors above 2 that a spawned program would inherit (cron's leftovers:
    ours are close-on-exec), for the job not to get them."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    found = []
    for name in names:
        fd = int(name)
        if fd > 2:
            with suppress(OSError):  # the listing's own descriptor is gone
                if os.get_inheritable(fd):
                    found.append(fd)
    return found


def spawn(
    argv: Sequence[str],
    cwd: str,
    env: Mapping[str, str],
    keep_fds: Optional[Mapping[int, int]] = None,
) -> _Child:
    """Start ``argv`` in ``cwd`` with ``env`` in a new session (see the module doc).

    ``posix_spawn`` cannot change directory, so the shim goes to ``cwd`` for the
    spawn and comes back: every path the shim's own threads use is absolute.
    ``keep_fds`` maps a descriptor number the job gets (above 2) to ours it copies.

    Raises:
        OSError: the program could not be started: FileNotFoundError when it is on
            none of the candidate paths, PermissionError when not executable, the
            error of ``execve`` otherwise; nothing is left open or running then.
    """
    if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:  # or the job could not be reaped
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    copies = _copies_to_pass(keep_fds or {})
    try:
        return _spawn_piped(argv, cwd, env, [(os.POSIX_SPAWN_DUP2, *pair) for pair in copies])
    finally:
        for fd, _ in copies:
            os.close(fd)


def _copies_to_pass(keep_fds: Mapping[int, int]) -> list[tuple[int, int]]:
    """Copy each descriptor of ``keep_fds`` (the job's number -> ours) above every
    number the job gets (close-on-exec), so that no earlier spawn action overwrites
    it and one that already has its number still loses close-on-exec in the job.

    Returns:
        (our copy, the job's number) pairs; the caller closes the copies.
    """
    lowest = max((3, *keep_fds)) + 1
    copies: list[tuple[int, int]] = []
    try:
        for target, ours in keep_fds.items():
            copies.append((fcntl.fcntl(ours, fcntl.F_DUPFD_CLOEXEC, lowest), target))
    except BaseException:
        for fd, _ in copies:
            os.close(fd)
        raise
    return copies


def _spawn_piped(
    argv: Sequence[str], cwd: str, env: Mapping[str, str], passing: list[tuple[Any, ...]]
) -> _Child:
    """:func:`spawn` once the passed descriptors are ready (``passing``: their spawn
    actions, done last)."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    actions: list[tuple[Any, ...]] = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, out_write, 1),
        (os.POSIX_SPAWN_DUP2, err_write, 2),
        *((os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds()),
        *passing,
    ]
    back = os.open(".", getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(cwd)
        try:
            pid = _spawn_first(argv, env, actions)
        finally:
            os.fchdir(back)
    except BaseException:
        for fd in (out_read, err_read):
            os.close(fd)
        raise
    finally:
        for fd in (out_write, err_write, back):
            os.close(fd)
    return _Child(pid, out_read, err_read)


def _spawn_first(argv: Sequence[str], env: Mapping[str, str], actions: list[Any]) -> int:
    """Spawn the first candidate of ``argv[0]`` that exists; return the pid."""
    candidates = _candidates(argv[0], env)
    if len(candidates) > 1:  # look first: each failed spawn costs a process
        candidates = [path for path in candidates if os.path.exists(path)]
        # On none of them (a PATH folder the user cannot search included): not found,
        # as a shell says, and not that folder's "Permission denied".
    first_error: Optional[OSError] = None
    for path in candidates:
        try:
            return os.posix_spawn(
                path,
                list(argv),
                dict(env),
                file_actions=actions,
                setsid=True,
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
            )
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR) and first_error is None:
                first_error = exc
    if first_error is not None:
        raise first_error
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])


class _Run:
    """One running process and what happened to it so far."""

    def __init__(self, pump: OutputPump, grace: float) -> None:
        self.proc: Optional[_Child] = None
        self.pump = pump
        self.grace = grace
        self.timed_out = False
        self.interrupted: Optional[int] = None
        self.kill_at: Optional[float] = None

    def signal_group(self, signum: int) -> None:
        if self.proc is None:
            return
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)

    def on_signal(self, signum: int, _frame: Optional[FrameType]) -> None:
        self.interrupted = signum
        if self.proc is not None:
            self.pass_on(signum)

    def pass_on(self, signum: int) -> None:
        """Send the job's group a signal we received; KILL it after the grace period."""
        name = SIGNAL_NAMES.get(signum, f"signal {signum}")
        self.pump.note(f"received {name}: passing it on to the job, KILL in {self.grace:g}s")
        self.signal_group(signum)
        if self.kill_at is None:
            self.kill_at = time.monotonic() + self.grace

    def check_timeout(self, deadline: Optional[float], grace: float) -> None:
        now = time.monotonic()
        if deadline is not None and not self.timed_out and now >= deadline:
            self.timed_out = True
            self.pump.note(f"timed out: sending TERM, KILL in {grace:g}s")
            self.signal_group(signal.SIGTERM)
            self.kill_at = now + grace if self.kill_at is None else min(self.kill_at, now + grace)
        if self.kill_at is not None and now >= self.kill_at:
            self.pump.note("still running after the grace period: sending KILL")
            self.signal_group(signal.SIGKILL)
            self.kill_at = None


def _pump_until_done(run: _Run, deadline: Optional[float], grace: float) -> None:
    proc = run.proc
    assert proc is not None
    streams = {proc.stdout: OUT, proc.stderr: ERR}
    poller = select.poll()  # not `selectors`: one import less on the shim's start-up
    for fd in streams:
        os.set_blocking(fd, False)
        poller.register(fd, select.POLLIN)
    reading = set(streams)
    drain_until: Optional[float] = None
    last_flush = time.monotonic()
    while reading:
        for fd, _event in poller.poll(250):
            chunk = read_chunk(fd)
            if chunk is None:  # end of file (or the pipe is gone)
                poller.unregister(fd)
                reading.discard(fd)
            elif chunk:
                run.pump.feed(streams[fd], chunk)
        run.check_timeout(deadline, grace)
        now = time.monotonic()
        if now - last_flush > 0.2:
            run.pump.log.flush()
            last_flush = now
        if drain_until is None and proc.poll() is not None:
            drain_until = now + DRAIN_SECONDS
        if drain_until is not None and now > drain_until:
            break


def _widen_pipes(proc: _Child) -> None:
    """Give the job's output pipes room for one full read (Linux; 64 KiB by default), so
    a chatty job costs the shim fewer, larger reads. Best effort: past the user's
    pipe-buffer allowance the kernel refuses, and the default size does."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    for fd in (proc.stdout, proc.stderr):
        if setpipe is not None:
            with suppress(OSError):
                fcntl.fcntl(fd, setpipe, READ_SIZE)


def run_process(
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    pump: OutputPump,
    timeout: Optional[float],
    grace: float,
    on_start: Optional[Callable[[int], None]] = None,
    keep_fds: Optional[Mapping[int, int]] = None,
) -> ProcessResult:
    """Run ``argv`` to its end, pumping its output.

    Args:
        argv: the command (no shell unless argv is ``/bin/sh -c ...``).
        cwd: the directory it starts in.
        env: its whole environment (secrets included: never logged).
        pump: where its output goes.
        timeout: seconds before TERM to its process group, or None.
        grace: seconds between that TERM (or a signal we passed on) and KILL.
        on_start: called with the process's pid, which is also its process group's id,
            as soon as it runs (the run lock records it for a ``replace`` run).
        keep_fds: descriptors the job gets: its number -> ours (the run lock's).

    Returns:
        How it ended.

    Raises:
        OSError: it could not be started (FileNotFoundError: no such program;
            PermissionError: not executable).
    """
    run = _Run(pump, grace)
    # ours before the start: a TERM in between is passed on, not the end of the shim
    previous = {signum: signal.signal(signum, run.on_signal) for signum in FORWARDED_SIGNALS}
    try:
        proc = spawn(argv, cwd, env, keep_fds)
    except BaseException:
        _restore(previous)
        raise
    run.proc = proc
    try:
        if on_start is not None:
            on_start(proc.pid)
        if run.interrupted is not None:
            run.pass_on(run.interrupted)
        _widen_pipes(proc)
        deadline = None if timeout is None else time.monotonic() + timeout
        _pump_until_done(run, deadline, grace)
        while True:
            code = proc.wait(timeout=0.25)
            if code is not None:
                break
            run.check_timeout(deadline, grace)
    except BaseException:
        # never leave the job running unwatched: the shim is going down
        run.signal_group(signal.SIGKILL)
        with suppress(BaseException):
            proc.wait(timeout=5)
        raise
    finally:
        _restore(previous)
        proc.close_pipes()
    pump.close()
    ended_by = -code if code < 0 else None
    exit_code = 128 + ended_by if ended_by is not None else code
    return ProcessResult(exit_code, ended_by, run.timed_out, run.interrupted)


def _restore(previous: Mapping[signal.Signals, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
