"""Reading a file only root (or this very user) could have written: every folder on
its way and the file itself.

For a file that gives power, like the AWS credentials root uses: a check of the file's
own mode is not enough when a folder above it is writable by a job user, who could
swap the file after the check. :func:`read_trusted_file` resolves the path once, then
walks it from ``/`` through real folders (no symbolic link followed on the way), each
owned by root or this user and writable by nobody else (a sticky folder like ``/tmp``
is fine: nobody else can rename what is in it), and reads the file through the same
descriptors: owned by root or this user, a regular file, mode 0600 or narrower.

For a file or folder a program reads by its path, like the trust set of signed commits
(an ``allowed_signers`` file, a gpg keyring): :func:`check_trusted_path` walks the same
way and checks that nobody else could write the entry (or, for a folder, everything it
holds, at any depth: keyboxd keeps its keys in ``public-keys.d/pubring.db``).

For a folder root writes into where a user said (``export --out``, ``timeline --svg``,
``install-shim --path``): :func:`output_folder` walks the same way down to the folder.
"""

from __future__ import annotations

import os
import stat
from typing import Optional

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class UntrustedFile(Exception):
    """The file, or a folder on its way, could be changed by someone else (the text
    says which and why)."""


def _open_checked_parent(real: str) -> tuple[int, list[str]]:
    """Walk from ``/`` down to the folder holding ``real`` (an absolute path, links
    resolved), checking every folder on the way.

    Returns:
        A descriptor of that folder (the caller closes it) and ``real``'s parts.

    Raises:
        UntrustedFile: a folder on the way could be written by another user.
        OSError: a folder cannot be opened.
    """
    parts = [part for part in real.split("/") if part]
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
    except BaseException:
        os.close(fd)
        raise
    return fd, parts


def read_trusted_file(path: str, limit: int = 64 * 1024) -> bytes:
    """Return the content of ``path`` after the checks above.

    Raises:
        UntrustedFile: a folder or the file could be written by another user, the file
            is not a regular file, is readable by group or others, or is larger than
            ``limit`` bytes.
        OSError: it cannot be opened (FileNotFoundError when it does not exist).
    """
    real = os.path.realpath(path)
    if real == "/":
        raise UntrustedFile(f"{path} is not a file")
    fd, parts = _open_checked_parent(real)
    try:
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


def check_trusted_path(path: str, directory: bool = False) -> str:
    """Check that ``path`` could only have been written by root (or this very user), and
    return its real path (symbolic links resolved) for a program to read.

    Every folder on its way must pass the folder check above; ``path`` itself must be a
    regular file (a folder with ``directory``), owned by root or this user and writable by
    nobody else; so must every file and folder in a folder's whole tree, walked through
    descriptors without following a symbolic link (one in the tree is refused: the
    program reading it would follow it). Unlike :func:`read_trusted_file`, others may
    read it (for public keys).

    Raises:
        UntrustedFile: a folder, the entry or (for a folder) an entry in its tree could be
            changed by someone else, is a symbolic link, or the entry is not of the
            expected type.
        OSError: it cannot be opened (FileNotFoundError when it does not exist).
    """
    real = os.path.realpath(path)
    fd, parts = _open_checked_parent(real)
    try:
        if not parts:
            _check_entry(os.fstat(fd), real, directory)
        else:
            _check_entry(os.stat(parts[-1], dir_fd=fd, follow_symlinks=False), real, directory)
            if directory:
                child = os.open(parts[-1], _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        if directory:
            _check_folder_entries(fd, real)
    finally:
        os.close(fd)
    return real


def _check_entry(info: os.stat_result, real: str, directory: bool) -> None:
    mode = stat.S_IMODE(info.st_mode)
    wanted = stat.S_ISDIR(info.st_mode) if directory else stat.S_ISREG(info.st_mode)
    if not wanted:
        raise UntrustedFile(f"{real} is not a {'directory' if directory else 'regular file'}")
    if not _trusted_owner(info.st_uid):
        raise UntrustedFile(f"{real} belongs to uid {info.st_uid}, not root")
    if mode & 0o022:
        raise UntrustedFile(f"{real} is writable by others (mode {mode:04o})")


def _check_folder_entries(fd: int, real: str) -> None:
    """Every file and folder in the tree of a trusted folder, at any depth (sockets and
    the like, which hold no data, are left alone; a symbolic link is refused).

    Args:
        fd: a descriptor of the folder (left open: the caller closes it).
        real: its real path, for messages.
    """
    pending: list[tuple[int, str]] = [(fd, real)]
    try:
        while pending:
            folder, where = pending.pop()
            try:
                for name in os.listdir(folder):
                    child = _check_tree_entry(folder, name, f"{where}/{name}")
                    if child is not None:
                        pending.append((child, f"{where}/{name}"))
            finally:
                if folder != fd:
                    os.close(folder)
    finally:
        for folder, _ in pending:
            if folder != fd:
                os.close(folder)


def _check_tree_entry(folder: int, name: str, where: str) -> Optional[int]:
    """Check one entry of a trusted tree; return a descriptor of it when it is a folder
    to walk (checked again through the descriptor: it may have been swapped). An entry
    gone meanwhile (a lock file of gpg) is skipped."""
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        raise UntrustedFile(f"{where} is a symbolic link (the trust set must hold its files)")
    if stat.S_ISREG(info.st_mode):
        _check_entry(info, where, directory=False)
    if not stat.S_ISDIR(info.st_mode):
        return None
    _check_entry(info, where, directory=True)
    try:
        child = os.open(name, _DIR_FLAGS, dir_fd=folder)
    except FileNotFoundError:
        return None
    try:
        _check_entry(os.fstat(child), where, directory=True)
    except BaseException:
        os.close(child)
        raise
    return child


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


def output_folder(folder: str, option: str) -> str:
    """Return the real path of ``folder`` (links resolved) for root to write files into.

    As root, every folder from ``/`` to ``folder`` itself must be owned by root and
    writable by nobody else (a sticky folder like ``/tmp`` is fine): otherwise another
    user could swap a folder on the way for a link between two writes, and root would
    write or remove files where they chose. Other users get the real path unchecked
    (they can only write where they may anyway). Write through the returned path.

    Args:
        folder: an existing folder.
        option: the option that named it, for the message (``--out``).
    Raises:
        UsageError: as root, a folder on the way could be changed by someone else, or
            cannot be opened.
    """
    from cronsync.core.errors import UsageError

    real = os.path.realpath(folder)
    if os.geteuid() != 0:
        return real
    try:
        fd, _ = _open_checked_parent(os.path.join(real, "x"))  # checks ``real`` itself too
    except UntrustedFile as exc:
        raise UsageError(f"{option} {folder}: {exc}; root writes only where others cannot") from exc
    except OSError as exc:
        raise UsageError(f"{option} {folder}: cannot open {real}: {exc.strerror}") from exc
    os.close(fd)
    return real
