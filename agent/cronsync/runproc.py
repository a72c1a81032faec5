"""Run a job's process: its own process group, output through the pump, a timeout that
sends TERM then KILL to the whole group, and TERM/INT/HUP sent to us passed on to it
(followed by KILL of the group after the grace period when it is still running).

The only place cronsync starts a job's command.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import signal
import subprocess
import time

from .frozen import Frozen
from .logformat import ERR, OUT
from .pump import READ_SIZE, read_chunk

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import FrameType
    from typing import Any, Callable, Optional

    from .pump import OutputPump

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
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


class _Run:
    """One running process and what happened to it so far."""

    def __init__(self, pump: OutputPump, grace: float) -> None:
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.pump = pump
        self.grace = grace
        self.timed_out = False
        self.interrupted: Optional[int] = None
        self.kill_at: Optional[float] = None

    def signal_group(self, signum: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)

    def on_signal(self, signum: int, _frame: Optional[FrameType]) -> None:
        self.interrupted = signum
        if self.proc is not None:
            self.pass_on(signum)

    def pass_on(self, signum: int) -> None:
        """Send the job's group a signal we received; KILL it after the grace period."""
        name = signal.Signals(signum).name
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
    assert proc is not None and proc.stdout is not None and proc.stderr is not None
    streams = {proc.stdout.fileno(): OUT, proc.stderr.fileno(): ERR}
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        drain_until: Optional[float] = None
        last_flush = time.monotonic()
        while selector.get_map():
            for key, _ in selector.select(timeout=0.25):
                chunk = read_chunk(key.fd)
                if chunk is None:
                    selector.unregister(key.fd)
                elif chunk:
                    run.pump.feed(streams[key.fd], chunk)
            run.check_timeout(deadline, grace)
            now = time.monotonic()
            if now - last_flush > 0.2:
                run.pump.log.flush()
                last_flush = now
            if drain_until is None and proc.poll() is not None:
                drain_until = now + DRAIN_SECONDS
            if drain_until is not None and now > drain_until:
                break


def _widen_pipes(proc: subprocess.Popen[bytes]) -> None:
    """Give the job's output pipes room for one full read (Linux; 64 KiB by default), so
    a chatty job costs the shim fewer, larger reads. Best effort: past the user's
    pipe-buffer allowance the kernel refuses, and the default size does."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    for pipe in (proc.stdout, proc.stderr):
        if setpipe is not None and pipe is not None:
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), setpipe, READ_SIZE)


def run_process(
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    pump: OutputPump,
    timeout: Optional[float],
    grace: float,
    on_start: Optional[Callable[[int], None]] = None,
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
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
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
            try:
                code = proc.wait(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                run.check_timeout(deadline, grace)
    except BaseException:
        # never leave the job running unwatched: the shim is going down
        run.signal_group(signal.SIGKILL)
        with contextlib.suppress(BaseException):
            proc.wait(timeout=5)
        raise
    finally:
        _restore(previous)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    pump.close()
    ended_by = -code if code < 0 else None
    exit_code = 128 + ended_by if ended_by is not None else code
    return ProcessResult(exit_code, ended_by, run.timed_out, run.interrupted)


def _restore(previous: Mapping[signal.Signals, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
