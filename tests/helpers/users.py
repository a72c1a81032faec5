"""Real Unix users for the tests that need more than one (as root only): made with
``useradd`` for one test and removed with ``userdel`` afterwards, whatever happens.

Also :func:`as_user`: run a function in a forked child that has become another user
(its groups, gid and uid), and get its JSON-able result back through a pipe. The child
execs nothing, so the user needs no access to this checkout or its interpreter.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

IS_ROOT = os.geteuid() == 0
HAS_USERADD = shutil.which("useradd") is not None and shutil.which("userdel") is not None


@contextlib.contextmanager
def temporary_users(count: int, prefix: str = "cst") -> Iterator[list[pwd.struct_passwd]]:
    """Make ``count`` users with fresh names (no home, no login shell); remove them."""
    made: list[str] = []
    try:
        for _ in range(count):
            name = f"{prefix}{secrets.token_hex(3)}"
            subprocess.run(
                ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                check=True,
                capture_output=True,
                timeout=60,
            )
            made.append(name)
        yield [pwd.getpwnam(name) for name in made]
    finally:
        for name in made:
            subprocess.run(["userdel", name], capture_output=True, timeout=60)


@contextlib.contextmanager
def open_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder every user can traverse (pytest's tmp_path is root's only)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def as_user(user: pwd.struct_passwd, work: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Run ``work`` as ``user`` in a forked child; return what it returned (JSON-able).

    Raises:
        AssertionError: the child failed, raised (its message is returned as the
            error) or did not finish within ``timeout`` seconds (it is killed).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the user, work, report, leave without cleanup
        code = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            result = {"ok": True, "value": work()}
        except BaseException as exc:  # everything goes back to the parent
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            code = 1
        try:
            os.write(write_end, json.dumps(result).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    chunks = []
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"the child as {user.pw_name} did not finish in time")
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    report = json.loads(b"".join(chunks) or b'{"ok": false, "error": "no report"}')
    if not report["ok"]:
        raise AssertionError(f"as {user.pw_name}: {report['error']}")
    return report["value"]
