"""Removing a directory tree, read-only directories included.

Every ``OSError`` becomes an :class:`~cronsync.core.errors.InstallError` naming the path.
"""

from __future__ import annotations

import os
import stat
import sys

from cronsync.core.errors import InstallError, os_reason

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs the shim ms
if TYPE_CHECKING:
    from typing import Any, Callable

    from cronsync.files.paths import StrPath


def _add_owner_rwx(path: str) -> None:
    """Give the owner rwx on the directory ``path`` (so its entries can be removed)."""
    mode = os.lstat(path).st_mode
    if stat.S_ISDIR(mode):
        os.chmod(path, stat.S_IMODE(mode) | stat.S_IRWXU)


class _UnlockAndRetry:
    """``shutil.rmtree`` error hooks: unlock read-only directories and retry.

    Only directories inside ``root`` (or ``root`` itself) are ever chmod-ed; a path
    that vanished meanwhile is fine; other errors are re-raised.
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def run(self, path: str) -> None:
        """Remove ``path`` with these hooks, on every Python we support."""
        if sys.version_info >= (3, 12):
            import shutil  # only removals need it; the shim never removes trees

            shutil.rmtree(path, onexc=self.onexc)
        else:
            import shutil

            shutil.rmtree(path, onerror=self.onerror)

    def onexc(self, func: Callable[..., Any], failed: str, exc: BaseException) -> None:
        """Hook for Python >= 3.12: see the class docstring."""
        if isinstance(exc, FileNotFoundError):
            return
        removing = func in (os.unlink, os.remove, os.rmdir)
        # Removing an entry needs a writable parent; listing a directory needs it readable.
        locked = os.path.dirname(failed) if removing else failed
        if not isinstance(exc, PermissionError) or not self._inside(locked):
            raise exc
        _add_owner_rwx(locked)
        if removing:
            func(failed)
        else:
            self.run(failed)

    def onerror(self, func: Callable[..., Any], failed: str, info: Any) -> None:
        """Hook for Python < 3.12 (``exc_info`` instead of the exception)."""
        self.onexc(func, failed, info[1])

    def _inside(self, path: str) -> bool:
        """Whether ``path`` is ``root`` or below it."""
        return path == self.root or path.startswith(self.root.rstrip(os.sep) + os.sep)


def remove_tree(path: StrPath) -> None:
    """Remove ``path`` and everything below it, if it exists.

    A missing path is fine; a file or symlink is unlinked (a link's target is never
    touched); read-only files and directories are removed too.

    Raises:
        InstallError: something could not be removed.
    """
    try:
        if not os.path.lexists(path):
            return
        if os.path.islink(path) or not os.path.isdir(path):
            os.unlink(path)
            return
        _UnlockAndRetry(os.path.abspath(path)).run(os.path.abspath(path))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InstallError(f"cannot remove {path}: {os_reason(exc)}") from exc
