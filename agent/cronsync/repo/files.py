"""Read a job repository's files from a directory (adapter: filesystem only).

Turns a directory into the ``SourceFile`` texts that ``manifest`` parses, reporting
files it cannot use as located Problems instead of failing: not UTF-8, unreadable,
too large, not a regular file, not ending in ``.toml``, or a symlink.

Symlinks are never followed: the agent reads the repository as root, so a committed
link (``jobs/x.toml -> /etc/shadow``, ``jobs -> /srv/other``) would otherwise pull
content from outside git into the crontab. ``cronsync.toml``, ``jobs/``, every folder
below it and every job file must be real ones; each link found is an error.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Container
from pathlib import Path, PurePosixPath
from typing import Optional

from cronsync.core.manifest import REPO_CONFIG, SourceFile
from cronsync.core.model import WARNING, Problem

JOBS_DIR = "jobs"
MAX_FILE_BYTES = 1024 * 1024
JOB_SUFFIX = ".toml"

_NOT_FOLLOWED = "is a symlink: job files must be regular files in the repository"
_FOLDER_LINK = (
    "is a symlink: folders under jobs/ must be real folders in the repository "
    "(links are not followed)"
)
_JOBS_LINK = "is a symlink: jobs/ must be a real folder in the repository (links are not followed)"
_CONFIG_LINK = "is a symlink: the repository config must be a regular file in the repository"
# O_NONBLOCK: a FIFO swapped in after the lstat must not hang the agent on open.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK


class _Refused(Exception):
    """A file that was opened but must not be used (its message says why)."""


def describe_kind(mode: int) -> str:
    """Return what a file of ``st_mode`` ``mode`` is, for a person ("a FIFO")."""
    kinds = (
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISREG, "a regular file"),
    )
    return next((name for test, name in kinds if test(mode)), "an unknown kind of file")


def _is_real_folder(path: Path) -> bool:
    """Return whether ``path`` is a folder and not a link to one (False when unreadable)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _cannot(relative: str, exc: OSError, what: str = "cannot read") -> Problem:
    """Build the problem for a file or folder the OS would not let us read."""
    return Problem(relative, None, "", f"{what}: {exc.strerror or exc}")


def _read_bytes(path: Path) -> bytes:
    """Read a regular file without following a symlink or blocking on a FIFO.

    Raises:
        OSError: it cannot be opened or read (``ELOOP``: it is a symlink).
        _Refused: it is not a regular file, or larger than ``MAX_FILE_BYTES``.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused(f"is {describe_kind(info.st_mode)}, not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise _Refused("file is larger than 1 MiB")
        chunks = []
        remaining = MAX_FILE_BYTES + 1  # the file may grow between fstat and read
        while remaining > 0:
            chunk = os.read(fd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_FILE_BYTES:
        raise _Refused("file is larger than 1 MiB")
    return data


def _read_text(
    relative: str, path: Path, link_message: str = _NOT_FOLLOWED
) -> tuple[Optional[SourceFile], list[Problem]]:
    """Read one regular file as UTF-8 text; a symlink in its place gets ``link_message``."""
    try:
        data = _read_bytes(path)
    except _Refused as exc:
        return None, [Problem(relative, None, "", str(exc))]
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a link since it was listed
            return None, [Problem(relative, None, "", link_message)]
        return None, [_cannot(relative, exc)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [Problem(relative, line, "", "not valid UTF-8 text")]
    return SourceFile(relative, text), []


def _read_config(root: Path) -> tuple[Optional[SourceFile], list[Problem]]:
    """Read ``cronsync.toml`` when present; links, folders and devices are refused."""
    path = root / REPO_CONFIG
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None, []
    except OSError as exc:
        return None, [_cannot(REPO_CONFIG, exc)]
    if stat.S_ISLNK(mode):
        return None, [Problem(REPO_CONFIG, None, "", _CONFIG_LINK)]
    if not stat.S_ISREG(mode):
        kind = describe_kind(mode)
        return None, [Problem(REPO_CONFIG, None, "", f"is {kind}: it must be a regular file")]
    return _read_text(REPO_CONFIG, path, _CONFIG_LINK)


def _jobs_dir_problem(root: Path) -> Optional[Problem]:
    """Return why ``root/jobs`` cannot be scanned (absent, a link, a file), else None."""
    try:
        mode = os.lstat(root / JOBS_DIR).st_mode
    except FileNotFoundError:
        return Problem(JOBS_DIR, None, "", "no jobs/ directory: is this a cronsync job repository?")
    except OSError as exc:
        return _cannot(JOBS_DIR, exc)
    if stat.S_ISLNK(mode):
        return Problem(JOBS_DIR, None, "", _JOBS_LINK)
    if not stat.S_ISDIR(mode):
        return Problem(JOBS_DIR, None, "", f"is {describe_kind(mode)}, not a folder")
    return None


class _JobsScan:
    """One walk of ``jobs/``: never follows links, never recurses on the C stack."""

    def __init__(self, root: Path, known: Container[str] = ()) -> None:
        self.root = root
        self.known = known  # job files not to read: their results are known
        self.files: list[SourceFile] = []
        self.found: list[str] = []  # the known job files met, unread
        self.problems: list[Problem] = []

    def run(self) -> None:
        """Visit every folder below ``jobs/`` (hidden ones skipped), folders before files."""
        pending = [JOBS_DIR]
        while pending:
            folder = pending.pop()
            try:
                with os.scandir(self.root / folder) as listing:
                    entries = sorted(entry.name for entry in listing)
            except OSError as exc:
                self.problems.append(
                    _cannot(folder, exc, "cannot read folder (its jobs would be skipped)")
                )
                continue
            for name in entries:
                subfolder = self._visit(f"{folder}/{name}", name, top=folder == JOBS_DIR)
                if subfolder:
                    pending.append(subfolder)

    def _visit(self, relative: str, name: str, top: bool) -> Optional[str]:
        """Handle one entry; return it when it is a folder to descend into."""
        if name.startswith("."):  # editor and VCS droppings; say so only where it misleads
            if name.endswith(JOB_SUFFIX) and not _is_real_folder(self.root / relative):
                message = "hidden file ignored: names starting with '.' are never jobs"
                self.problems.append(Problem(relative, None, "", message, WARNING))
            return None
        try:
            mode = os.lstat(self.root / relative).st_mode
        except OSError as exc:
            self.problems.append(_cannot(relative, exc))
            return None
        if stat.S_ISLNK(mode):
            message = _NOT_FOLLOWED if name.endswith(JOB_SUFFIX) else _FOLDER_LINK
            self.problems.append(Problem(relative, None, "", message))
            return None
        if stat.S_ISDIR(mode):
            if name.endswith(JOB_SUFFIX):
                message = "is a folder, not a job file (the .toml files in it are read as jobs)"
                self.problems.append(Problem(relative, None, "", message, WARNING))
            return relative
        self._visit_file(relative, name, mode)
        return None

    def _visit_file(self, relative: str, name: str, mode: int) -> None:
        """Read a job file, or record why this non-folder entry is not one."""
        if not stat.S_ISREG(mode):
            kind = describe_kind(mode)
            if name.endswith(JOB_SUFFIX):
                message = f"is {kind}, not a regular file: job files must be regular files"
                self.problems.append(Problem(relative, None, "", message))
            else:
                message = f"ignored: {kind}, not a regular file"
                self.problems.append(Problem(relative, None, "", message, WARNING))
            return
        if not name.endswith(JOB_SUFFIX):
            message = "ignored: job files end in .toml"
            self.problems.append(Problem(relative, None, "", message, WARNING))
            return
        if relative in self.known:
            self.found.append(relative)
            return
        source, problems = _read_text(relative, self.root / relative)
        self.problems += problems
        if source is not None:
            self.files.append(source)


def read_repo(root: Path) -> tuple[Optional[SourceFile], list[SourceFile], list[Problem]]:
    """Read ``cronsync.toml`` and every ``jobs/**/*.toml`` below ``root``.

    Args:
        root: the repository directory (itself may be a link; nothing below it is followed).

    Returns:
        The repo config (None when absent or unusable), the job files sorted by path,
        and the problems with files that could not be used. Hidden files and folders
        are skipped (a hidden ``*.toml`` file gets a warning); other files under
        ``jobs/`` that are not ``.toml`` get a warning (a typo such as ``x.tml`` would
        otherwise silently drop a job); symlinks, special files and unreadable
        folders are errors. Nothing is raised for the repository's content.
    """
    config, files, _found, problems = read_repo_except(root, ())
    return config, files, problems


def read_repo_except(
    root: Path, known: Container[str]
) -> tuple[Optional[SourceFile], list[SourceFile], list[str], list[Problem]]:
    """:func:`read_repo`, but the regular job files whose paths are in ``known`` (their
    content is known from elsewhere: a build that reuses earlier results) are not read.

    Returns:
        As :func:`read_repo`, and third the paths of ``known`` that are regular job files
        here, sorted.
    """
    config, problems = _read_config(root)
    missing = _jobs_dir_problem(root)
    if missing is not None:
        return config, [], [], [*problems, missing]
    scan = _JobsScan(root, known)
    scan.run()
    files = sorted(scan.files, key=lambda source: PurePosixPath(source.path).parts)
    found = sorted(scan.found, key=lambda path: PurePosixPath(path).parts)
    return config, files, found, problems + scan.problems
