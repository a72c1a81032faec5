"""Extract a tar stream safely (used to export a commit with ``git archive``).

Only directories, regular files and symlinks; no absolute names, no ``..``, nothing
written through a symlink, no entry twice; modes normalised to 0755/0644.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import IO, Optional

from cronsync.core.errors import SourceError


class UnsafeArchiveError(SourceError):
    """An archive member would land outside the destination or is not a plain entry."""


def extract_tar(stream: IO[bytes], dest: Path) -> None:
    """Extract a tar stream into the existing, empty directory ``dest``, safely.

    Only directories, regular files and symlinks are accepted; names must be
    relative without ``..``; nothing may be written through a symlink or replace
    an earlier entry. Files get 0755 if any execute bit is set, else 0644;
    directories 0755 — whatever the archive or the umask says. Symlink targets are
    stored verbatim and never followed. Owners and times are not restored.

    Args:
        stream: a readable, not necessarily seekable, tar byte stream.
        dest: the directory to fill.

    Raises:
        SourceError: an entry is unsafe (absolute, ``..``, device, hard link, ...).
        OSError, tarfile.TarError: reading the stream or writing failed.
    """
    kinds: dict[PurePosixPath, str] = {}
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            rel = _member_path(member)
            if rel is None:
                continue
            _make_parents(dest, rel, kinds)
            _extract_member(archive, member, dest / rel, kinds.get(rel))
            kinds[rel] = "dir" if member.isdir() else "other"


def _member_path(member: tarfile.TarInfo) -> Optional[PurePosixPath]:
    """Validate a member's name; return its relative path (None for the root itself).

    Raises:
        UnsafeArchiveError: absolute name, ``..`` component, or an unsupported type.
    """
    name = member.name
    if name.startswith("/"):
        raise UnsafeArchiveError(f"archive entry {name!r} has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"archive entry {name!r} leaves the destination")
    if not (member.isdir() or member.isreg() or member.issym()):
        raise UnsafeArchiveError(f"archive entry {name!r} is not a file, directory or symlink")
    if not parts:
        if member.isdir():
            return None
        raise UnsafeArchiveError(f"archive entry {name!r} has no name")
    return PurePosixPath(*parts)


def _make_parents(dest: Path, rel: PurePosixPath, kinds: dict[PurePosixPath, str]) -> None:
    """Create the missing parent directories of ``rel`` below ``dest``.

    Raises:
        UnsafeArchiveError: a parent is a symlink or a file written earlier.
    """
    for depth in range(1, len(rel.parts)):
        parent = PurePosixPath(*rel.parts[:depth])
        kind = kinds.get(parent)
        if kind is None:
            make_dir(dest / parent)
            kinds[parent] = "dir"
        elif kind != "dir":
            raise UnsafeArchiveError(f"archive entry {str(rel)!r} goes through a non-directory")


def _extract_member(
    archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path, seen: Optional[str]
) -> None:
    """Write one validated member at ``target``; ``seen`` is what is already there.

    Raises:
        UnsafeArchiveError: ``target`` already exists and is not a directory being re-listed.
    """
    if seen is not None and not (seen == "dir" and member.isdir()):
        raise UnsafeArchiveError(f"archive entry {member.name!r} appears twice")
    if member.isdir():
        if seen is None:
            make_dir(target)
    elif member.issym():
        os.symlink(member.linkname, target)
    else:
        _write_member_file(archive, member, target)


def make_dir(path: Path) -> None:
    """Create the directory ``path`` with mode 0755 whatever the umask.

    Raises:
        OSError: it exists or cannot be created.
    """
    os.mkdir(path, 0o755)
    # Releases are read by every job's user, so directories are world-readable.
    os.chmod(path, 0o755)  # noqa: S103


def _write_member_file(archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    """Copy a regular member's content to the new file ``target`` (0755 or 0644)."""
    mode = 0o755 if member.mode & 0o111 else 0o644
    source = archive.extractfile(member)
    assert source is not None  # a regular member always has content
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(target, flags, mode)
    with open(fd, "wb", closefd=True) as out, source:
        os.fchmod(fd, mode)
        shutil.copyfileobj(source, out)
