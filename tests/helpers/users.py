"""Real Unix users for the tests that need more than one (as root only): made with
``useradd`` for one test and removed with ``userdel`` afterwards, whatever happens.

Names are unique per pytest-xdist worker (:func:`fresh_user_name`): workers create and
remove users at the same time (``useradd`` serializes on the password file's lock).

Also :func:`as_user`: run a function in a forked child that has become another user
(its groups, gid and uid), and get its JSON-able result back through a pipe. The child
execs nothing, so the user needs no access to this checkout or its interpreter.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
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


def fresh_user_name(prefix: str) -> str:
    """A new user name: ``prefix``, the xdist worker's number (``w0``, none outside
    xdist) and 6 random hex digits; at most 32 characters for a prefix of up to 20."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "").replace("gw", "w")
    name = f"{prefix}{worker}{secrets.token_hex(3)}"
    assert len(name) <= 32, name  # useradd's limit
    return name


@contextlib.contextmanager
def temporary_users(count: int, prefix: str = "cst") -> Iterator[list[pwd.struct_passwd]]:
    """Make ``count`` users with fresh names (no home, no login shell); remove them."""
    made: list[str] = []
    try:
        for _ in range(count):
            name = fresh_user_name(prefix)
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


_preloaded = False


def preload_cronsync() -> None:
    """Import every module of cronsync into this process (once; ``__main__`` left out).

    A child of :func:`as_user` inherits them: code that imports a module only when it
    needs it (the shim's masking of a secret's encoded forms, say) must not have to read
    it from this checkout, which the user may not reach (a clone in a private folder).
    """
    global _preloaded
    if _preloaded:
        return
    import cronsync

    for module in pkgutil.walk_packages(cronsync.__path__, "cronsync."):
        if not module.name.endswith(".__main__"):
            importlib.import_module(module.name)
    _preloaded = True


def as_user(user: pwd.struct_passwd, work: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Run ``work`` as ``user`` in a forked child; return what it returned (JSON-able).

    Every cronsync module is imported first (:func:`preload_cronsync`).

    Raises:
        AssertionError: the child failed, raised (its message is returned as the
            error) or did not finish within ``timeout`` seconds (it is killed).
    """
    preload_cronsync()
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
