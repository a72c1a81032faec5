"""Reading a file only root (or this very user) could have written: every folder on
its way and the file itself.

For a file that gives power, like the AWS credentials root uses: a check of the file's
own mode is not enough when a folder above it is writable by a job user, who could
swap the file after the check. :func:`read_trusted_file` resolves the path once, then
walks it from ``/`` through real folders (no symbolic link followed on the way), each
owned by root or this user and writable by nobody else (a sticky folder like ``/tmp``
is fine: nobody else can rename what is in it), and reads the file through the same
descriptors: owned by root or this user, a regular file, mode 0600 or narrower.
"""

from __future__ import annotations

import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class UntrustedFile(Exception):
    """The file, or a folder on its way, could be changed by someone else (the text
    says which and why)."""


def read_trusted_file(path: str, limit: int = 64 * 1024) -> bytes:
    """Return the content of ``path`` after the checks above.

    Raises:
        UntrustedFile: a folder or the file could be written by another user, the file
            is not a regular file, is readable by group or others, or is larger than
            ``limit`` bytes.
        OSError: it cannot be opened (FileNotFoundError when it does not exist).
    """
    real = os.path.realpath(path)
    parts = [part for part in real.split("/") if part]
    if not parts:
        raise UntrustedFile(f"{path} is not a file")
    fd = os.open("/", _DIR_FLAGS)
    try:
        _check_folder(fd, "/")
        where = ""
        for part in parts[:-1]:
            where += "/" + part
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
            _check_folder(fd, where)
        file_fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        _check_file(file_fd, real, limit)
        data = os.read(file_fd, limit + 1)
    finally:
        os.close(file_fd)
    if len(data) > limit:
        raise UntrustedFile(f"{real} is larger than {limit} bytes")
    return data


def _trusted_owner(uid: int) -> bool:
    return uid in (0, os.geteuid())


def _check_folder(fd: int, where: str) -> None:
    info = os.fstat(fd)
    if not _trusted_owner(info.st_uid):
        raise UntrustedFile(f"{where} belongs to uid {info.st_uid}, not root")
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        mode = stat.S_IMODE(info.st_mode)
        raise UntrustedFile(
            f"{where} is writable by others (mode {mode:04o}): anyone could swap the file"
        )


def _check_file(fd: int, real: str, limit: int) -> None:
    info = os.fstat(fd)
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISREG(info.st_mode):
        raise UntrustedFile(f"{real} is not a regular file")
    if not _trusted_owner(info.st_uid):
        raise UntrustedFile(f"{real} belongs to uid {info.st_uid}, not root")
    if mode & 0o077:
        raise UntrustedFile(f"{real} is mode {mode:04o}: others may read or change it")
    if info.st_size > limit:
        raise UntrustedFile(f"{real} is larger than {limit} bytes")
