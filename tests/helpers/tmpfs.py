"""A small real filesystem that fills up: a tmpfs mounted for one test (root only).

``small_tmpfs(path, size=..., inodes=...)`` mounts a tmpfs of that many bytes (and
inodes) over ``path`` and unmounts it afterwards, whatever happens; it skips the test
with a reason when it cannot (not root, or no mount allowed in this container).
:func:`free_bytes` and :func:`free_inodes` say what is left; :func:`resize` changes the
size in place (files stay).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest

IS_ROOT = os.geteuid() == 0


def _mount(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


@contextlib.contextmanager
def small_tmpfs(path: Path, size: int, inodes: Optional[int] = None) -> Iterator[Path]:
    """Mount a ``size``-byte tmpfs (at most ``inodes`` inodes) over the directory
    ``path`` (created if missing); unmount it at the end."""
    if not IS_ROOT:
        pytest.skip("a disk-full test mounts a small tmpfs, which needs root")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0755" + (f",nr_inodes={inodes}" if inodes else "")
    done = _mount(["mount", "-t", "tmpfs", "-o", options, "cronsync-test", str(path)])
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        if _mount(["umount", str(path)]).returncode != 0:
            _mount(["umount", "--lazy", str(path)])  # something still holds a file open


def resize(path: Path, size: int) -> None:
    """Give the tmpfs at ``path`` a new size (its files stay)."""
    done = _mount(["mount", "-o", f"remount,size={size}", str(path)])
    assert done.returncode == 0, done.stderr


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on ``path``'s filesystem."""
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def free_inodes(path: Path) -> int:
    """Inodes still free on ``path``'s filesystem."""
    return os.statvfs(path).f_ffree
