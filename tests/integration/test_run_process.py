"""cronsync.run.process: what a started job gets (the same as ``subprocess.Popen(start_new_session=
True, close_fds=True)`` would give it), with real processes and a real run log.

The job reports its own view (session, descriptors, signal dispositions, directory,
stdin) on stdout; the test reads it from the log that the real pump wrote.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest

from cronsync.core.logformat import plain_text
from cronsync.run.masking import Masker
from cronsync.run.process import ProcessResult, run_process, spawn
from cronsync.run.pump import OutputPump

NOBODY = 65534

REPORT = """\
import os, sys
print("session", os.getsid(0) == os.getpid())
def is_open(fd):
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
print("fds", [fd for fd in range(3, 256) if is_open(fd)])
print("cwd", os.getcwd())
print("stdin", repr(sys.stdin.read()))
print("env", os.environ.get("ONLY_HERE"))
sys.stderr.write("to stderr\\n")
sys.exit(3)
"""


def run(
    tmp_path: Path, argv: list[str], cwd: Path, env: dict[str, str]
) -> tuple[ProcessResult, str]:
    log_path = tmp_path / "run.log"
    with open(log_path, "ab") as log:
        pump = OutputPump(log, Masker([]))
        result = run_process(argv, cwd=str(cwd), env=env, pump=pump, timeout=60, grace=1)
    return result, plain_text(log_path.read_bytes(), with_streams=True).decode()


def test_the_job_gets_what_popen_would_give_it(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    leaked = os.open(os.devnull, os.O_RDONLY)  # a descriptor cron could have left us
    os.set_inheritable(leaked, True)
    here = os.getcwd()
    try:
        result, output = run(
            tmp_path, [sys.executable, "-c", REPORT], workdir, {"ONLY_HERE": "yes"}
        )
    finally:
        os.close(leaked)
    assert (result.exit_code, result.signal, result.timed_out) == (3, None, False)
    assert "session True" in output
    assert "fds []" in output  # nothing but stdin, stdout and stderr
    assert f"cwd {workdir}" in output and os.getcwd() == here
    assert "stdin ''" in output and "env yes" in output
    assert "to stderr" in output


def test_sigpipe_and_sigxfsz_are_back_to_their_defaults(tmp_path: Path) -> None:
    # Python ignores SIGPIPE (and SIGXFSZ): a job must not inherit that, or `yes | head`
    # would never end. The shell's own mask of ignored signals, from the kernel:
    result, output = run(tmp_path, ["/bin/sh", "-c", "grep SigIgn /proc/$$/status"], tmp_path, {})
    assert result.exit_code == 0
    ignored = int(output.split()[-1], 16)
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):
        assert not ignored & (1 << (signum - 1)), output


def test_a_program_is_found_in_the_jobs_path_not_ours(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    program = tools / "only-in-the-jobs-path"
    program.write_text("#!/bin/sh\necho found it\n")
    program.chmod(0o755)
    env = {"PATH": f"{tmp_path / 'nothing-here'}:{tools}"}
    result, output = run(tmp_path, ["only-in-the-jobs-path"], tmp_path, env)
    assert result.exit_code == 0 and "found it" in output
    with pytest.raises(FileNotFoundError):
        run(tmp_path, ["only-in-the-jobs-path"], tmp_path, {"PATH": "/usr/bin:/bin"})


def test_a_path_folder_the_user_cannot_search_does_not_hide_not_found() -> None:
    """A missing program is not found (exit 127 in the shim), as a shell says, even when a
    folder of PATH cannot be searched by the job's user (its EACCES is not the answer);
    a program in a later folder is still found. Run as nobody when we are root."""
    base = Path(tempfile.mkdtemp(prefix="cronsync-path-"))  # reachable by nobody
    try:
        base.chmod(0o755)
        locked = base / "locked"
        locked.mkdir(mode=0o000)
        tools = base / "tools"
        tools.mkdir(mode=0o755)
        (tools / "tool").write_text("#!/bin/sh\nexit 0\n")
        (tools / "tool").chmod(0o755)
        assert run_as_unprivileged(f"{locked}:{tools}:/usr/bin:/bin") == 0
    finally:
        (base / "locked").chmod(0o755)
        shutil.rmtree(base)


def run_as_unprivileged(path: str) -> int:
    """In a forked child (as nobody when root): spawn a missing program, then ``tool``,
    with ``PATH=path``. Exit 0 when the first is not found and the second runs."""
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 9
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            try:
                spawn(["no-such-program-for-cronsync"], "/", {"PATH": path})
                code = 4
            except FileNotFoundError:
                child = spawn(["tool"], "/", {"PATH": path})
                child.close_pipes()
                code = os.waitpid(child.pid, 0)[1]
            except PermissionError:
                code = 3  # the locked folder's "Permission denied" instead of not found
        except BaseException as exc:
            os.write(2, f"child: {exc!r}\n".encode())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status)


def test_start_failures_are_the_errors_of_exec_and_leave_nothing_open(tmp_path: Path) -> None:
    not_executable = tmp_path / "plain.sh"
    not_executable.write_text("#!/bin/sh\necho never\n")
    before = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(PermissionError):
        run(tmp_path, [str(not_executable)], tmp_path, {})
    with pytest.raises(FileNotFoundError):
        run(tmp_path, [str(tmp_path / "missing")], tmp_path, {})
    with pytest.raises(FileNotFoundError):
        run(tmp_path, ["true"], tmp_path / "no-such-dir", {"PATH": "/usr/bin:/bin"})
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_a_signal_ends_it_as_128_plus_n(tmp_path: Path) -> None:
    result, _ = run(tmp_path, ["/bin/sh", "-c", "kill -TERM $$"], tmp_path, {})
    assert (result.exit_code, result.signal) == (128 + signal.SIGTERM, signal.SIGTERM)
