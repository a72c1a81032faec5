"""cronsync.files (atomic, tree, lock) against the real filesystem and a real second process."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

import cronsync
from cronsync.core.errors import InstallError, LockBusyError
from cronsync.files.atomic import atomic_symlink, atomic_write, fsync_dir, fsync_tree
from cronsync.files.lock import ExclusiveLock
from cronsync.files.tree import remove_tree

AGENT_DIR = Path(cronsync.__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0
NOBODY = 65534


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask after a test changes it."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- atomic_write -----------------------------------------------------------


@pytest.mark.parametrize("process_umask", [0o077, 0o000, 0o022], ids=oct)
def test_atomic_write_applies_mode_whatever_the_umask(
    tmp_path: Path, umask: None, process_umask: int
) -> None:
    os.umask(process_umask)
    target = tmp_path / "cronsync"
    atomic_write(target, b"* * * * * root true\n")
    assert mode_of(target) == 0o644
    assert target.read_bytes() == b"* * * * * root true\n"


def test_atomic_write_custom_mode(tmp_path: Path, umask: None) -> None:
    os.umask(0o077)
    target = tmp_path / "state.json"
    atomic_write(target, b"{}", mode=0o640)
    assert mode_of(target) == 0o640


def test_atomic_write_replaces_content_exactly_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "cronsync"
    target.write_bytes(b"old content that is longer than the new one\n")
    old_inode = target.stat().st_ino
    data = bytes(range(256)) + b"no trailing newline"
    atomic_write(target, data)
    assert target.read_bytes() == data
    assert target.stat().st_ino != old_inode  # replaced, not rewritten in place
    assert os.listdir(tmp_path) == ["cronsync"]


def test_atomic_write_empty_data(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    atomic_write(target, b"")
    assert target.read_bytes() == b""


@pytest.mark.skipif(not IS_ROOT, reason="chown to another user needs root")
def test_atomic_write_sets_owner(tmp_path: Path) -> None:
    target = tmp_path / "owned"
    atomic_write(target, b"x\n", owner=(NOBODY, NOBODY), mode=0o600)
    info = target.stat()
    assert (info.st_uid, info.st_gid) == (NOBODY, NOBODY)
    assert mode_of(target) == 0o600


def test_atomic_write_missing_directory_raises_install_error(tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "cronsync"
    with pytest.raises(InstallError, match=r"cannot write .*no-such-dir/cronsync: No such file"):
        atomic_write(target, b"x\n")
    assert os.listdir(tmp_path) == []


def test_atomic_write_parent_is_a_file_raises_install_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InstallError, match="afile/cronsync: Not a directory"):
        atomic_write(tmp_path / "afile" / "cronsync", b"x\n")
    assert os.listdir(tmp_path) == ["afile"]


def test_atomic_write_over_a_directory_fails_and_removes_its_temp_file(tmp_path: Path) -> None:
    # The temp file is created and written; only the final rename fails.
    (tmp_path / "cronsync").mkdir()
    with pytest.raises(InstallError, match=r"cannot write .*cronsync: Is a directory"):
        atomic_write(tmp_path / "cronsync", b"x\n")
    assert os.listdir(tmp_path) == ["cronsync"]
    assert (tmp_path / "cronsync").is_dir()


def test_atomic_write_error_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InstallError) as info:
        atomic_write(tmp_path / "missing" / "f", b"")
    assert "\n" not in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


# --- fsync ------------------------------------------------------------------


def test_fsync_dir_on_missing_directory_raises(tmp_path: Path) -> None:
    fsync_dir(tmp_path)
    with pytest.raises(InstallError, match="cannot open directory"):
        fsync_dir(tmp_path / "missing")


def test_fsync_tree_walks_files_dirs_and_ignores_links(tmp_path: Path) -> None:
    root = tmp_path / "release"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_text("x")
    (root / "top").write_text("y")
    (root / "dangling").symlink_to("/nonexistent/target")
    (root / "loop").symlink_to("..")
    fsync_tree(root)  # no error: links are neither followed nor opened


def test_fsync_tree_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="missing"):
        fsync_tree(tmp_path / "missing")


# --- atomic_symlink -----------------------------------------------------------


def test_atomic_symlink_creates_and_replaces(tmp_path: Path) -> None:
    (tmp_path / "releases" / "aaa").mkdir(parents=True)
    (tmp_path / "releases" / "bbb").mkdir(parents=True)
    current = tmp_path / "current"
    atomic_symlink(current, "releases/aaa")
    assert os.readlink(current) == "releases/aaa"
    atomic_symlink(current, "releases/bbb")
    assert os.readlink(current) == "releases/bbb"
    assert sorted(os.listdir(tmp_path)) == ["current", "releases"]
    # the old release is untouched: the link itself was replaced, not followed
    assert (tmp_path / "releases" / "aaa").is_dir()


def test_atomic_symlink_over_a_directory_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "current").mkdir()
    (tmp_path / "current" / "keep").write_text("x")
    with pytest.raises(InstallError, match=r"cannot point .*current at releases/x"):
        atomic_symlink(tmp_path / "current", "releases/x")
    assert os.listdir(tmp_path) == ["current"]
    assert (tmp_path / "current" / "keep").exists()


# --- remove_tree --------------------------------------------------------------


def make_read_only_tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "sub" / "deeper" / "f").write_text("x")
    (root / "sub" / "ro").write_text("y")
    os.chmod(root / "sub" / "ro", 0o444)
    os.chmod(root / "sub" / "deeper", 0o555)
    os.chmod(root / "sub", 0o555)


def test_remove_tree_missing_path_is_fine(tmp_path: Path) -> None:
    remove_tree(tmp_path / "missing")


def test_remove_tree_removes_read_only_tree(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    make_read_only_tree(root)
    remove_tree(root)
    assert not root.exists()


def test_remove_tree_on_symlink_removes_only_the_link(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "keep").write_text("x")
    (tmp_path / "link").symlink_to("target")
    remove_tree(tmp_path / "link")
    assert not os.path.lexists(tmp_path / "link")
    assert (tmp_path / "target" / "keep").exists()


def test_remove_tree_on_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    remove_tree(tmp_path / "f")
    assert os.listdir(tmp_path) == []


def test_remove_tree_read_only_as_unprivileged_user() -> None:
    """Permissions only bite a non-root user: drop to nobody in a forked child."""
    base = Path(tempfile.mkdtemp(prefix="cronsync-rm-"))
    try:
        root = base / "tree"
        make_read_only_tree(root)
        sub = root / "sub"
        sub.chmod(0o755)  # a user cannot add to a 0555 folder, even its own: open it first
        (sub / "locked").mkdir(mode=0o000)
        sub.chmod(0o555)
        if IS_ROOT:
            for path in [base, *sorted(base.rglob("*"))]:
                os.lchown(path, NOBODY, NOBODY)
        assert run_as_unprivileged(lambda: remove_tree(root)) == 0
        assert not root.exists()
    finally:
        remove_tree(base)


def test_remove_tree_never_unlocks_a_directory_outside_the_tree() -> None:
    base = Path(tempfile.mkdtemp(prefix="cronsync-rm-"))
    try:
        root = base / "tree"
        root.mkdir()
        (root / "f").write_text("x")
        if IS_ROOT:
            for path in [base, root, root / "f"]:
                os.lchown(path, NOBODY, NOBODY)
        base.chmod(0o555)

        def remove_and_check() -> None:
            with pytest.raises(InstallError, match=r"cannot remove .*tree: Permission denied"):
                remove_tree(root)
            assert mode_of(base) == 0o555

        assert run_as_unprivileged(remove_and_check) == 0
    finally:
        base.chmod(0o755)
        remove_tree(base)


def run_as_unprivileged(action: Callable[[], None]) -> int:
    """Run ``action()`` in a forked child (as nobody when we are root); return its exit code."""
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            if IS_ROOT:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            action()
            code = 0
        except BaseException as exc:
            sys.stderr.write(f"child failed: {exc!r}\n")
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


# --- ExclusiveLock ------------------------------------------------------------


def test_lock_creates_file_and_parent_and_records_pid(tmp_path: Path) -> None:
    lock_path = tmp_path / "run" / "sync.lock"
    with ExclusiveLock(lock_path, "sync"):
        assert mode_of(lock_path) == 0o600
        assert lock_path.read_text().strip() == str(os.getpid())
    assert lock_path.read_text() == ""  # pid cleared on release


def test_lock_second_holder_in_same_process_is_refused(tmp_path: Path) -> None:
    lock_path = tmp_path / "sync.lock"
    with ExclusiveLock(lock_path, "sync"):
        with pytest.raises(LockBusyError) as info:
            ExclusiveLock(lock_path, "sync").__enter__()
        assert str(info.value) == (
            f"another sync is running (lock {lock_path} held by pid {os.getpid()})"
        )
        assert info.value.exit_code == 75
    with ExclusiveLock(lock_path, "sync"):
        pass  # released: acquirable again


def test_lock_object_cannot_be_entered_twice(tmp_path: Path) -> None:
    lock = ExclusiveLock(tmp_path / "l", "sync")
    with lock, pytest.raises(RuntimeError):
        lock.__enter__()


def test_lock_unopenable_path_raises_install_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InstallError, match="cannot open lock file"):
        ExclusiveLock(tmp_path / "afile" / "l.lock", "sync").__enter__()


HOLDER = """
import sys
from pathlib import Path
from cronsync.files.lock import ExclusiveLock
with ExclusiveLock(Path(sys.argv[1]), "sync"):
    print("ready", flush=True)
    sys.stdin.read()
"""


def start_holder(lock_path: Path) -> subprocess.Popen[bytes]:
    """Start a python process that holds the lock until its stdin closes."""
    env = {**os.environ, "PYTHONPATH": str(AGENT_DIR)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    return proc


def test_lock_contention_with_a_real_second_process(tmp_path: Path) -> None:
    lock_path = tmp_path / "sync.lock"
    holder = start_holder(lock_path)
    try:
        busy = ExclusiveLock(lock_path, "sync")
        with pytest.raises(LockBusyError, match=rf"held by pid {holder.pid}\)$"):
            busy.__enter__()
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.stdout.close()
        assert holder.wait(timeout=60) == 0
    with ExclusiveLock(lock_path, "sync"):
        assert lock_path.read_text().strip() == str(os.getpid())


def test_lock_of_a_killed_holder_is_free(tmp_path: Path) -> None:
    lock_path = tmp_path / "sync.lock"
    holder = start_holder(lock_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.close()
    holder.stdout.close()
    with ExclusiveLock(lock_path, "sync"):  # flock died with its process
        pass
