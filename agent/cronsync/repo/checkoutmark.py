"""Which directory is cronsync's checkout: the marker it writes when it clones, and the
rule for removing a broken checkout.

A broken checkout is removed (and cloned afresh) only when it is a directory cronsync
made: one with a ``.git``, an empty one, or the very directory it cloned — the marker
``.NAME.cronsync-clone`` next to the checkout ``NAME`` holds that directory's device and
inode, so a checkout whose ``.git`` is gone is still recognised, and a directory someone
else put at the same path is not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from cronsync.core.errors import CronsyncError, InstallError, SourceError
from cronsync.files import atomic, tree

MARKER_SUFFIX = ".cronsync-clone"
"""The marker of a checkout ``NAME`` is ``.NAME.cronsync-clone`` next to it."""


def marker_path(checkout: Path) -> Path:
    """Where the marker naming the directory cronsync cloned for ``checkout`` lives."""
    return checkout.parent / f".{checkout.name}{MARKER_SUFFIX}"


def _identity(directory: Path) -> str:
    """The marker's text for ``directory``: its device and inode.

    Raises:
        OSError: it cannot be looked at.
    """
    info = os.lstat(directory)
    return f"cronsync clone {info.st_dev} {info.st_ino}\n"


def mark_as_ours(directory: Path, checkout: Path) -> None:
    """Record ``directory`` (the checkout, or the clone about to become it) as the one
    cronsync made for ``checkout``, unless the marker says so already.

    Raises:
        InstallError: the marker cannot be written.
    """
    marker = marker_path(checkout)
    try:
        identity = _identity(directory)
        if _read_marker(marker) == identity:
            return
    except OSError as exc:
        raise InstallError(f"cannot look at {directory}: {exc.strerror or exc}") from exc
    atomic.atomic_write(marker, identity.encode(), mode=0o644)


def _read_marker(marker: Path) -> Optional[str]:
    """The marker's text, None when there is none (or it cannot be read)."""
    try:
        return marker.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def remove_broken_checkout(checkout: Path) -> None:
    """Delete a broken checkout, but only if it is one of ours: a directory with a
    ``.git``, an empty one, or the very directory cronsync cloned (its marker).

    Raises:
        SourceError: ``checkout`` is none of these — refusing to delete something that
            may not be ours — or it cannot be removed.
    """
    try:
        is_dir = checkout.is_dir() and not checkout.is_symlink()
        ours = is_dir and (
            os.path.lexists(checkout / ".git")
            or not any(checkout.iterdir())
            or _read_marker(marker_path(checkout)) == _identity(checkout)
        )
    except OSError:
        ours = False
    if not ours:
        raise SourceError(
            f"{checkout} exists, has no .git and is not the directory cronsync cloned "
            f"({marker_path(checkout).name} next to it names the one it made); refusing "
            "to replace it: move it away and the next sync clones afresh"
        )
    try:
        tree.remove_tree(checkout)
    except CronsyncError as exc:
        raise SourceError(f"cannot remove broken checkout: {exc}") from exc
